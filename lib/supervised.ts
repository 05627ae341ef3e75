// A service started by `lakebase start` stops gracefully when its supervisor dies, even by kill -9: the supervisor
// holds the other end of the service's stdin, which the kernel closes when the supervisor exits. Without this, a
// killed supervisor would leave its services running (and holding their ports).
export function stopWithSupervisor(): void {
  if (process.env.LAKEBASE_SUPERVISED !== '1') return;
  let done = false;
  const stop = () => {
    if (done) return;
    done = true;
    process.kill(process.pid, 'SIGTERM'); // the service's own graceful shutdown
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
