// Self-test of the harness alone (no Python): `npm test --prefix tests/interop`.
// Builds a small fleet with the real Baileys, then checks that verify_fleet.mjs
// passes on an untouched copy and catches the deletions that break a chat.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cp, mkdtemp, readFile, readdir, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
const run = promisify(execFile)
let base
let manifest

async function node(script, args) {
	try {
		const { stdout } = await run(process.execPath, [path.join(here, script), ...args], { maxBuffer: 1 << 26 })
		return { code: 0, out: JSON.parse(stdout) }
	} catch (error) {
		if (error.code === 1 && error.stdout) {
			return { code: 1, out: JSON.parse(error.stdout) }
		}
		throw error
	}
}

/** A fresh copy of the fleet with `remove` (file names of the first tenant) deleted, verified. */
async function verifyAfterDeleting(name, remove) {
	const dir = path.join(base, name)
	await cp(path.join(base, 'pristine'), dir, { recursive: true })
	const tenant = manifest.tenants[0]
	for (const file of remove) {
		await unlink(path.join(dir, 'root', tenant.dir, file))
	}
	return node('verify_fleet.mjs', ['--root', path.join(dir, 'root'), '--contacts-dir', path.join(dir, 'contacts')])
}

before(async () => {
	base = await mkdtemp(path.join(tmpdir(), 'wa-interop-'))
	const root = path.join(base, 'pristine', 'root')
	const contacts = path.join(base, 'pristine', 'contacts')
	await node('build_fleet.mjs', ['--root', root, '--contacts-dir', contacts, '--company', '1', '--company', '2', '--prekeys', '120'])
	manifest = JSON.parse(await readFile(path.join(contacts, 'manifest.json'), 'utf-8'))
})

after(async () => {
	if (base) {
		await rm(base, { recursive: true, force: true })
	}
})

test('manifest accounts for every file in each tenant folder', async () => {
	for (const tenant of manifest.tenants) {
		const listing = (await readdir(path.join(base, 'pristine', 'root', tenant.dir))).sort()
		assert.deepEqual(listing, Object.keys(tenant.files).sort())
		assert.equal(tenant.files['creds.json'], 'creds')
		assert.equal(tenant.nextPreKeyId, 121)
	}
})

test('an untouched fleet verifies', async () => {
	const { code, out } = await verifyAfterDeleting('untouched', [])
	assert.equal(code, 0, JSON.stringify(out.failures))
	assert.equal(out.skipped, 0)
})

test('deleting our own sender key together with its sender-key-memory is safe', async () => {
	const group = manifest.tenants[0].groups[0]
	const { code, out } = await verifyAfterDeleting('pair', [group.ownSenderKeyFile, group.memoryFile])
	assert.equal(code, 0, JSON.stringify(out.failures))
})

test('deleting our own sender key but keeping sender-key-memory breaks the group', async () => {
	const group = manifest.tenants[0].groups[1]
	const { code, out } = await verifyAfterDeleting('own-only', [group.ownSenderKeyFile])
	assert.equal(code, 1)
	assert.deepEqual(
		out.failures.map(f => [f.check, f.subject]),
		[['tenant-group-message', group.jid]]
	)
})

test('deleted sessions and member sender keys are skipped, and the tenant re-establishes sessions', async () => {
	const tenant = manifest.tenants[0]
	const group = tenant.groups[0]
	const victim = tenant.contacts.find(c => c.name === group.members[0].contact)
	const { code, out } = await verifyAfterDeleting('sessions', [
		victim.tenantSessionFile,
		group.members[1].senderKeyFile,
		group.ownSenderKeyFile,
		group.memoryFile
	])
	assert.equal(code, 0, JSON.stringify(out.failures))
	assert.deepEqual(out.checks.filter(c => c.status === 'skipped').map(c => c.check).sort(), ['contact-message', 'member-group-message'])
})

test('deleting the newest pre-key breaks new contacts', async () => {
	const newest = manifest.tenants[0].nextPreKeyId - 1
	const { code, out } = await verifyAfterDeleting('pre-key', [`pre-key-${newest}.json`])
	assert.equal(code, 1)
	assert.deepEqual(
		out.failures.map(f => [f.check, f.subject]),
		[['newest-pre-key', `pre-key-${newest}`]]
	)
})
