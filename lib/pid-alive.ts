// Whether a process exists (signal 0): for lock files and markers that name the pid of their holder. EPERM means it
// exists but belongs to another user.
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
