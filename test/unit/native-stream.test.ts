// The native door's exec stream: output a process writes before its start call returns waits for the 101, so the
// first bytes on the socket are always the HTTP answer (a utility VM's agent can answer with output at once).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { heldClient, socketClient, upgraded } from '../../src/api/native/stream.js';

test('output before open() waits, in order, behind the 101', async () => {
  const socket = new PassThrough();
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  const client = heldClient(socketClient(socket, true, false));
  client.onOutput(1, Buffer.from('early '));
  client.onOutput(2, Buffer.from('output'));
  assert.equal(Buffer.concat(chunks).length, 0);
  upgraded(socket, 'application/vnd.silo.raw-stream');
  client.open();
  client.onOutput(1, Buffer.from(' then more'));
  client.onEnd();
  await new Promise((r) => socket.on('end', r));
  const text = Buffer.concat(chunks).toString();
  assert.ok(text.startsWith('HTTP/1.1 101 UPGRADED\r\n'), text);
  assert.ok(text.endsWith('\r\n\r\nearly output then more'), text);
});
