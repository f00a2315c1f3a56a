export async function cmdInspect(_argv: string[]): Promise<number> {
  return 1;
}
