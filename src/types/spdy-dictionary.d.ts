// The SPDY/3 header dictionary module of spdy-transport (CommonJS, untyped): dictionaries by protocol version.
declare module 'spdy-transport/lib/spdy-transport/protocol/spdy/dictionary.js' {
  const dictionaries: Record<string, Buffer>;
  export default dictionaries;
}
