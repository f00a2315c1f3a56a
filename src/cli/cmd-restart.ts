export async function cmdRestart(_argv: string[]): Promise<number> {
  return 1;
}
