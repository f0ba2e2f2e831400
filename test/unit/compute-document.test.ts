// The create specification's document as the compute service keeps it: nothing a request may carry is dropped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDocument } from '../../src/compute/document.js';
import { Container } from '../../src/compute/spec/schema.js';
import type { Image } from '../../src/storage/types.js';

const image = { id: 'sha256:' + 'a'.repeat(64), config: {} } as unknown as Image;

test('buildDocument keeps every Container field of the schema (a field it forgot would be accepted and silently dropped)', () => {
  const fields = Object.keys(Container.properties);
  const c = Object.fromEntries(fields.map((k) => [k, { marker: k }]));
  const doc = buildDocument('f'.repeat(64), { Image: 'busybox', Document: { Container: c } } as never, image);
  // GuestOs and Storage are rebuilt from their parts (a default hostname, the image): the rest must come through as given.
  for (const k of fields.filter((f) => f !== 'GuestOs' && f !== 'Storage')) assert.deepEqual((doc.Container as Record<string, unknown>)[k], { marker: k }, k);
});
