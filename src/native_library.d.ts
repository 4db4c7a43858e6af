// The native library is imported `with { type: "file" }` (src/native.ts) so that `bun build --compile`
// embeds it; such an import yields the file's path.
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*.dylib" {
  const path: string;
  export default path;
}
