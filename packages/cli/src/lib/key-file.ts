import { randomBytes } from 'node:crypto'
import { chmod, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { importKeySet, KeyError, type KeySet, type KeySetDocument } from '@idctx/core'
import { CliError, ExitCode } from './exit-codes.js'

/** Reads a private key set file (`keyset-v1`, see `exportKeySet`): its text and the key set. */
export async function readKeySetFile(file: string, clock?: () => number): Promise<{ text: string; keys: KeySet }> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new CliError(ExitCode.Usage, `cannot read the key set file ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    return { text, keys: importKeySet(text, clock === undefined ? {} : { clock }) }
  } catch (e) {
    // KeyError messages name paths and kids, never key material.
    if (e instanceof KeyError) throw new CliError(ExitCode.Usage, `${JSON.stringify(file)}: ${e.message}`)
    throw e
  }
}

/**
 * Writes a private key set document readable by its owner only (mode 0600), atomically: a
 * temporary file in the same directory, then a rename, so a crash never leaves half a key set.
 * With `exclusive`, an existing file is an error.
 */
export async function writeKeySetFile(file: string, document: KeySetDocument, exclusive: boolean): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(`${JSON.stringify(document, null, 2)}\n`, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await chmod(tmp, 0o600)
    if (exclusive) {
      // link-free exclusivity: open the target with 'wx' so a file created meanwhile is not replaced.
      try {
        const h = await open(file, 'wx', 0o600)
        await h.close()
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CliError(ExitCode.Usage, `${JSON.stringify(file)} already exists (use --force to replace it)`)
        }
        throw e
      }
    }
    await rename(tmp, file)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
}
