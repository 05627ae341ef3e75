// Endpoints through the API: records here, computes through EndpointManager, whose `current_state` follows what
// really runs (a start returns once the compute accepts connections, a suspend once it stopped).
import { EndpointDisabledError } from './endpoints.ts';
import { ApiError, conflict } from './errors.ts';
import { newEndpointId } from './ids.ts';
import { getBranch, getEndpoint, getProject } from './lookup.ts';
import type { ControlPlaneState, EndpointRecord, EndpointType, OperationRecord } from './model.ts';
import { operationsOf } from './operations/index.ts';
import type { OperationRunner } from './operations/index.ts';
import type { Plane } from './plane.ts';

export interface CreateEndpointInput {
  branchId: string;
  type: EndpointType;
  name?: string;
  suspend_timeout_seconds?: number;
  autoscaling_limit_min_cu?: number;
  autoscaling_limit_max_cu?: number;
  disabled?: boolean;
}

export interface UpdateEndpointInput {
  branchId?: string;
  name?: string;
  suspend_timeout_seconds?: number;
  autoscaling_limit_min_cu?: number;
  autoscaling_limit_max_cu?: number;
  disabled?: boolean;
}

function assertOneReadWrite(s: ControlPlaneState, branchId: string, except?: string): void {
  const other = Object.values(s.endpoints).find((e) => e.branch_id === branchId && e.type === 'read_write' && e.id !== except);
  if (other) throw conflict('READ_WRITE_ENDPOINT_EXISTS', `branch ${branchId} already has a read_write endpoint (${other.id}); a branch has at most one. Create a read_only endpoint, or use ${other.id}`);
}

export class EndpointAdmin {
  private readonly plane: Plane;
  private readonly hasComputeHosts: boolean;
  private readonly ops: OperationRunner;

  constructor(plane: Plane, hasComputeHosts: boolean) {
    this.plane = plane;
    this.hasComputeHosts = hasComputeHosts;
    this.ops = operationsOf(plane);
  }

  create(projectId: string, input: CreateEndpointInput): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, () => this.plane.state.mutate((s) => {
      const project = getProject(s, projectId);
      getBranch(s, projectId, input.branchId);
      if (input.type === 'read_write') assertOneReadWrite(s, input.branchId);
      const now = new Date().toISOString();
      const defaults = project.default_endpoint_settings ?? {};
      const endpoint: EndpointRecord = {
        id: newEndpointId(), project_id: projectId, branch_id: input.branchId, type: input.type, name: input.name ?? null,
        suspend_timeout_seconds: input.suspend_timeout_seconds ?? defaults.suspend_timeout_seconds ?? 0,
        autoscaling_limit_min_cu: input.autoscaling_limit_min_cu ?? defaults.autoscaling_limit_min_cu,
        autoscaling_limit_max_cu: input.autoscaling_limit_max_cu ?? defaults.autoscaling_limit_max_cu,
        current_state: 'idle', disabled: input.disabled ?? false, created_at: now, updated_at: now, last_active: null,
      };
      s.endpoints[endpoint.id] = endpoint;
      return { endpoint, operations: this.ops.record(s, projectId, Date.now(), [{ action: 'create_compute', branch_id: input.branchId, endpoint_id: endpoint.id }]) };
    }));
  }

  update(projectId: string, endpointId: string, input: UpdateEndpointInput): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      const ep = getEndpoint(s0, projectId, endpointId);
      const moving = input.branchId !== undefined && input.branchId !== ep.branch_id;
      if (moving) {
        getBranch(s0, projectId, input.branchId!);
        if (ep.type === 'read_write') assertOneReadWrite(s0, input.branchId!, ep.id);
      }
      // A compute runs one branch's timeline; a move (or disabling) stops it first.
      if (moving || input.disabled === true) await this.plane.endpoints.suspend(endpointId);
      return this.plane.state.mutate((s) => {
        const e = getEndpoint(s, projectId, endpointId);
        if (moving) {
          getBranch(s, projectId, input.branchId!);
          if (e.type === 'read_write') assertOneReadWrite(s, input.branchId!, e.id);
          e.branch_id = input.branchId!;
        }
        if (input.name !== undefined) e.name = input.name;
        if (input.suspend_timeout_seconds !== undefined) e.suspend_timeout_seconds = input.suspend_timeout_seconds;
        if (input.autoscaling_limit_min_cu !== undefined) e.autoscaling_limit_min_cu = input.autoscaling_limit_min_cu;
        if (input.autoscaling_limit_max_cu !== undefined) e.autoscaling_limit_max_cu = input.autoscaling_limit_max_cu;
        if (input.disabled !== undefined) e.disabled = input.disabled;
        e.updated_at = new Date().toISOString();
        return { endpoint: e, operations: this.ops.record(s, projectId, Date.now(), [{ action: 'apply_config', branch_id: e.branch_id, endpoint_id: e.id }]) };
      });
    });
  }

  private async wake(endpointId: string): Promise<void> {
    if (!this.hasComputeHosts) throw new ApiError(503, 'NO_COMPUTE_HOST', 'no compute host is configured, so no compute can start; run the control plane with --compute-host (lakebase start does)');
    try {
      await this.plane.endpoints.wake(endpointId);
    } catch (e) {
      if (e instanceof EndpointDisabledError) throw conflict('ENDPOINT_DISABLED', `${e.message}; enable it first (PATCH with {"endpoint": {"disabled": false}})`);
      throw new ApiError(503, 'COMPUTE_UNAVAILABLE', `the compute did not start: ${(e as Error).message}; retry`);
    }
  }

  start(projectId: string, endpointId: string): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const ep = getEndpoint(this.plane.state.current, projectId, endpointId);
      const started = Date.now();
      await this.wake(ep.id);
      return this.finish(projectId, endpointId, started, ['start_compute']);
    });
  }

  suspend(projectId: string, endpointId: string): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      getEndpoint(this.plane.state.current, projectId, endpointId);
      const started = Date.now();
      await this.plane.endpoints.suspend(endpointId);
      return this.finish(projectId, endpointId, started, ['suspend_compute']);
    });
  }

  restart(projectId: string, endpointId: string): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      getEndpoint(this.plane.state.current, projectId, endpointId);
      const started = Date.now();
      if (!this.hasComputeHosts) await this.wake(endpointId); // fails with the reason, before stopping anything
      await this.plane.endpoints.suspend(endpointId);
      await this.wake(endpointId);
      return this.finish(projectId, endpointId, started, ['suspend_compute', 'start_compute']);
    });
  }

  delete(projectId: string, endpointId: string): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      getEndpoint(this.plane.state.current, projectId, endpointId);
      const started = Date.now();
      await this.plane.endpoints.suspend(endpointId);
      return this.plane.state.mutate((s) => {
        const e = getEndpoint(s, projectId, endpointId);
        delete s.endpoints[endpointId];
        return { endpoint: { ...e, current_state: 'idle' }, operations: this.ops.record(s, projectId, started, [{ action: 'suspend_compute', branch_id: e.branch_id, endpoint_id: e.id }]) };
      });
    });
  }

  private finish(projectId: string, endpointId: string, started: number, actions: ('start_compute' | 'suspend_compute')[]): Promise<{ endpoint: EndpointRecord; operations: OperationRecord[] }> {
    return this.plane.state.mutate((s) => {
      const e = getEndpoint(s, projectId, endpointId);
      return { endpoint: e, operations: this.ops.record(s, projectId, started, actions.map((action) => ({ action, branch_id: e.branch_id, endpoint_id: e.id }))) };
    });
  }
}
