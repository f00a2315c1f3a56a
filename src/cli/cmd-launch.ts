export async function cmdLaunch(_argv: string[]): Promise<number> {
  return 1;
}
