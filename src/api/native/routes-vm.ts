// `silo vm template` and `silo vm kernel`: the vm isolation backend's templates (make one ahead of the first VM of a
// size, list, remove) and the guest kernels containers named (list, remove).

import type { FastifyInstance } from 'fastify';
import { conflict, invalid } from '../../common/errors.js';
import type { Services } from '../../host/services.js';

/** A VM template is named by the limits of the containers that use it: Memory (bytes, as `run -m`) and Cpus, and by
 *  their guest kernel (Kernel: a Debian kernel package, as `run --vm-kernel`). */
function limits(body: unknown): { memoryBytes?: number; cpus?: number } {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'Memory' && k !== 'Cpus' && k !== 'Kernel') throw invalid(`unknown field ${k}: a VM template takes Memory, Cpus and Kernel`);
  const { Memory, Cpus } = b;
  if (Memory !== undefined && !(Number.isSafeInteger(Memory) && (Memory as number) > 0)) throw invalid('Memory must be a positive number of bytes');
  if (Cpus !== undefined && !(typeof Cpus === 'number' && Cpus > 0 && Cpus <= 64)) throw invalid('Cpus must be a number of CPUs from 0 to 64');
  return { memoryBytes: Memory as number | undefined, cpus: Cpus as number | undefined };
}

export function vmRoutes(app: FastifyInstance, svc: Services): void {
  app.get('/v1/vm/templates', async () => svc.vm.listTemplates());
  app.post('/v1/vm/templates', async (req, reply) => {
    const kernel = (req.body as { Kernel?: unknown } | undefined)?.Kernel;
    if (kernel !== undefined && typeof kernel !== 'string') throw invalid('Kernel must be a Debian kernel package name');
    return reply.status(201).send(await svc.vm.makeTemplate(limits(req.body), kernel));
  });
  app.delete('/v1/vm/templates/:key', async (req, reply) => {
    await svc.vm.removeTemplate((req.params as { key: string }).key);
    return reply.status(204).send();
  });

  const users = (pkg: string) => svc.compute.list(true).filter((r) => r.Document.VirtualMachine?.KernelPackage === pkg);
  app.get('/v1/vm/kernels', async () => (await svc.vm.listKernels()).map((k) => ({ ...k, Containers: users(k.Package).length })));
  app.delete('/v1/vm/kernels/:package', async (req, reply) => {
    const pkg = (req.params as { package: string }).package;
    const force = ['1', 'true'].includes(String((req.query as { force?: string }).force));
    // As an image a container uses: refused unless forced. Forced, a container that names it fetches it at its next start.
    await svc.vm.checkKernel(pkg); // a 404 before a 409
    const by = users(pkg);
    if (by.length && !force) throw conflict(`guest kernel ${pkg} is named by ${by.length} container(s), ${by[0].Name} among them: remove them first, or force (fetched again at their next start)`);
    await svc.vm.removeKernel(pkg);
    return reply.status(204).send();
  });
}
