// Which containers use a volume, for both HTTP doors: found by the volume's data path in every container's mapped
// directories (a Docker-door volume, a native `-v name:/x`, a --volumes-from copy, a subpath of it), so neither door
// removes a volume a container of the other still mounts.

import type { ComputeSystemRecord } from '../compute/types.js';

export function volumeUsers(systems: ComputeSystemRecord[], mountpoint: string): string[] {
  const under = (p: string) => p === mountpoint || p.startsWith(mountpoint + '/');
  return systems.filter((r) => (r.Document.Container.MappedDirectories ?? []).some((m) => under(m.HostPath))).map((r) => r.Id);
}
