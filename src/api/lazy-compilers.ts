// Fastify's own schema compilers — Ajv for request validation, fast-json-stringify for response serialisation — made
// on a route's first request instead of when the server starts. By default fastify builds both compilers and
// compiles every route's schemas at ready(), which loads Ajv and fast-json-stringify and keeps code for every route
// resident whether or not a client ever calls it (most daemons never see most routes). The libraries still do all the
// validating and serialising: these factories only defer the calls fastify would have made, with the same options.

import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type Factories = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type BuildValidator = NonNullable<Factories['buildValidator']>;
type BuildSerializer = NonNullable<Factories['buildSerializer']>;
// As fastify calls them: a compiler per server, then a function per route schema.
type Compiler<F> = (route: unknown) => F;
type Factory<F> = (externalSchemas: unknown, options: unknown) => Compiler<F>;
type Validate = ((...args: unknown[]) => unknown) & { schemaEnv?: unknown; errors?: unknown };

const require = createRequire(import.meta.url);

/** For Fastify({ schemaController: { compilersFactory: lazyCompilers() } }); one per server. */
export function lazyCompilers(): { buildValidator: BuildValidator; buildSerializer: BuildSerializer } {
  const buildValidator: Factory<Validate> = (externalSchemas, options) => {
    let compiler: Compiler<Validate> | undefined;
    const make = () => (compiler ??= (require('@fastify/ajv-compiler') as () => Factory<Validate>)()(externalSchemas, options));
    return (route) => lazyValidate(() => make()(route));
  };
  const buildSerializer: Factory<(doc: unknown) => string> = (externalSchemas, options) => {
    let compiler: Compiler<(doc: unknown) => string> | undefined;
    const make = () => (compiler ??= (require('@fastify/fast-json-stringify-compiler') as () => Factory<(doc: unknown) => string>)()(externalSchemas, options));
    return (route) => {
      let serialize: ((doc: unknown) => string) | undefined;
      return (doc) => (serialize ??= make()(route))(doc);
    };
  };
  return { buildValidator: buildValidator as unknown as BuildValidator, buildSerializer: buildSerializer as unknown as BuildSerializer };
}

/**
 * A stand-in for Ajv's validate function that compiles the real one on its first call. Fastify reads `schemaEnv`
 * (to pass the parent data along) and `errors` (after a failed call) from the function, so both are forwarded.
 */
function lazyValidate(compile: () => Validate): Validate {
  let fn: Validate | undefined;
  const real = () => (fn ??= compile());
  const validate = function (this: unknown, ...args: unknown[]) {
    return real().apply(this, args);
  };
  Object.defineProperty(validate, 'schemaEnv', { get: () => real().schemaEnv });
  Object.defineProperty(validate, 'errors', { get: () => fn?.errors });
  return validate;
}
