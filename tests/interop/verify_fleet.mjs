#!/usr/bin/env node
// After a cleanup of the tenant folders built by build_fleet.mjs, prove with
// Baileys' own code that every chat the cleanup claims to have kept still works:
//
//  contact-message   every contact whose session file is still in the tenant
//                    folder sends a new 1:1 message; the tenant decrypts it
//                    with the kept session.
//  member-group-message
//                    every group member whose sender key is still in the tenant
//                    folder sends a new group message (no new sender key: its
//                    sender-key memory says the tenant has it); the tenant
//                    decrypts it.
//  tenant-group-message
//                    the tenant sends to every group the way relayMessage does
//                    (sender key + distribution to devices missing from
//                    sender-key-memory); every member must decrypt it. This
//                    fails if our own sender key was deleted while the group's
//                    sender-key-memory was kept.
//  newest-pre-key    a brand-new contact starts a session with the bundle of the
//                    newest pre-key (nextPreKeyId - 1 in creds.json); the tenant
//                    decrypts the pkmsg, then they exchange replies.
//  oldest-server-pre-key (info only)
//                    a new contact gets the pre-key the server would hand out
//                    next (the oldest uploaded); says whether the tenant could
//                    decrypt its first message.
//  app-state / lid-mapping
//                    read-only: the current app-state sync key and versions and
//                    the LID mappings still load through Baileys' key store.
//
//   node verify_fleet.mjs (--root DIR | --store URL) --contacts-dir DIR2 [--company ID]...
//        [--only CHECK:SUBJECT]...
//
// Prints one JSON document; exits 1 when any check failed, 2 on a usage or
// setup error. It writes to the folders like a live client would (it advances
// ratchets and consumes the newest pre-key), so run it once per fleet build.
// --store: the tenants' auth state is in Redis / MySQL (lib/auth_stores.mjs).
// --only (repeatable): run just these checks, e.g. `contact-message:pn0`,
// `member-group-message:120363000000000000@g.us md1`,
// `tenant-group-message:120363000000000001@g.us` -- a traffic pass that changes
// exactly those keys of the tenant (no pre-key is consumed).
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseAndInjectE2ESessions } from 'baileys'
import { openBackend } from './lib/auth_stores.mjs'
import { KeyServer, makeLogger, messageId, openAccount, parseArgs, sendDirect, sendGroup, uploadPreKeys } from './lib/harness.mjs'

async function verifyTenant({ tenant: t, backend, only, contactsDir, logger, results }) {
	const tenantDir = path.join(backend.location, t.dir)
	const exists = file => backend.has({ company: t.company, dir: t.dir }, file)
	const selected = (check, subject) => !only.length || only.some(o => o.check === check && o.subject === subject)
	const record = (check, subject, status, detail = null) => {
		if (selected(check, subject)) {
			results.push({ company: t.company, check, subject, status, detail })
		}
	}
	const attempt = async (check, subject, fn) => {
		if (!selected(check, subject)) {
			return
		}
		try {
			const detail = await fn()
			record(check, subject, 'passed', detail ?? null)
		} catch (error) {
			record(check, subject, 'failed', error.message)
		}
	}

	if (!(await exists('creds.json'))) {
		results.push({ company: t.company, check: 'creds', subject: t.dir, status: 'failed', detail: 'creds.json is missing' })
		return
	}
	const authState = await backend.authState({ company: t.company, dir: t.dir })
	const tenant = await openAccount(tenantDir, { logger, name: t.dir, authState })
	if (tenant.meId !== t.me.id) {
		results.push({ company: t.company, check: 'creds', subject: t.dir, status: 'failed', detail: `creds.json me.id is ${tenant.meId}, built as ${t.me.id}` })
		return
	}
	const serverFile = path.join(contactsDir, t.dir, 'server.json')
	const server = await KeyServer.load(serverFile)
	try {
		await verifyWith({ t, tenant, exists, traffic: only.length > 0, contactsDir, server, logger, record, attempt })
	} finally {
		await server.save(serverFile)
		tenant.repo.close?.()
	}
}

async function verifyWith({ t, tenant, exists, traffic, contactsDir, server, logger, record, attempt }) {
	const contacts = {}
	for (const c of t.contacts) {
		contacts[c.name] = { ...c, account: await openAccount(path.join(contactsDir, c.dir), { logger, name: `${t.dir}/${c.name}` }) }
	}

	// (a) 1:1 sessions that were kept still decrypt
	for (const c of Object.values(contacts)) {
		if (!(await exists(c.tenantSessionFile))) {
			record('contact-message', c.name, 'skipped', `${c.tenantSessionFile} was deleted`)
			continue
		}
		await attempt('contact-message', c.name, async () => {
			const body = `verify ${c.name} ${messageId()}`
			// no key server: the contact must reuse its existing session
			const { type, received } = await sendDirect(c.account, tenant, {
				fromJid: c.jid,
				toJid: c.peer,
				message: { conversation: body }
			})
			if (received.message?.conversation !== body) {
				throw new Error(`tenant decrypted ${JSON.stringify(received.message)}`)
			}
			return `${type} decrypted with ${c.tenantSessionFile}`
		})
	}

	// (b) other members' kept sender keys still decrypt their new messages
	for (const g of t.groups) {
		for (const m of g.members) {
			const subject = `${g.jid} ${m.contact}`
			if (!(await exists(m.senderKeyFile))) {
				record('member-group-message', subject, 'skipped', `${m.senderKeyFile} was deleted`)
				continue
			}
			await attempt('member-group-message', subject, async () => {
				const { distributedTo, results: got } = await sendGroup(contacts[m.contact].account, {
					group: g.jid,
					senderJid: m.jid,
					addressingMode: g.addressingMode,
					recipients: [{ account: tenant, jid: g.tenantSenderJid }],
					text: `verify group ${m.contact} ${messageId()}`,
					server
				})
				if (distributedTo.length) {
					throw new Error(`member re-sent its sender key to ${distributedTo}: the build left its memory incomplete`)
				}
				const failed = got.filter(r => !r.ok)
				if (failed.length) {
					throw new Error(failed.map(r => r.error).join('; '))
				}
				return `skmsg decrypted with ${m.senderKeyFile}`
			})
		}
	}

	// (d) the tenant can still send to each group and every member reads it
	for (const g of t.groups) {
		await attempt('tenant-group-message', g.jid, async () => {
			const ownKeyKept = await exists(g.ownSenderKeyFile)
			const memoryKept = await exists(g.memoryFile)
			const { distributedTo, results: got } = await sendGroup(tenant, {
				group: g.jid,
				senderJid: g.tenantSenderJid,
				addressingMode: g.addressingMode,
				recipients: g.members.map(m => ({ account: contacts[m.contact].account, jid: m.jid })),
				text: `verify tenant to ${g.jid} ${messageId()}`,
				server
			})
			const failed = got.filter(r => !r.ok)
			if (failed.length) {
				throw new Error(
					`own sender key ${ownKeyKept ? 'kept' : 'deleted'}, sender-key-memory ${memoryKept ? 'kept' : 'deleted'}; ` +
						failed.map(r => `${r.jid}: ${r.error}`).join('; ')
				)
			}
			return `own sender key ${ownKeyKept ? 'kept' : 'new'}, distributed to ${distributedTo.length ? distributedTo.join(', ') : 'nobody'}`
		})
	}

	// (c) a brand-new contact uses the newest pre-key
	const newestId = tenant.creds.nextPreKeyId - 1
	await attempt('newest-pre-key', `pre-key-${newestId}`, async () => {
		const fresh = await openAccount(path.join(contactsDir, t.dir, `fresh-${Date.now()}`), { logger, name: `${t.dir}/fresh` })
		const freshJid = '15559999999@s.whatsapp.net'
		await fresh.updateCreds({ me: { id: freshJid }, platform: 'android' })
		server.upload([freshJid], await uploadPreKeys(fresh, 5))
		const bundle = server.fetch([t.me.id], { preKeyId: newestId })
		await parseAndInjectE2ESessions(bundle, fresh.repo)
		const body = `hello from a new contact ${messageId()}`
		const { type, received } = await sendDirect(fresh, tenant, { fromJid: freshJid, toJid: t.me.id, message: { conversation: body } })
		if (type !== 'pkmsg' || received.message?.conversation !== body) {
			throw new Error(`unexpected ${type} / ${JSON.stringify(received.message)}`)
		}
		const reply = `reply ${messageId()}`
		const back = await sendDirect(tenant, fresh, { fromJid: t.me.id, toJid: freshJid, message: { conversation: reply } })
		if (back.received.message?.conversation !== reply) {
			throw new Error('the new contact could not read the reply')
		}
		return `pkmsg with pre-key ${newestId} decrypted`
	})

	// (info) what the key server hands the next new contact: its oldest pre-key.
	// After a pre-key cap that id is usually gone locally; Baileys then answers
	// with a retry receipt carrying a fresh pre-key. Reported, never a failure.
	try {
		if (traffic) {
			throw new Error('a traffic pass (--only)')
		}
		const oldestId = server.preKeyIds(t.me.id)[0]
		const stranger = await openAccount(path.join(contactsDir, t.dir, `stranger-${Date.now()}`), { logger, name: `${t.dir}/stranger` })
		const strangerJid = '15559999998@s.whatsapp.net'
		await stranger.updateCreds({ me: { id: strangerJid }, platform: 'android' })
		await parseAndInjectE2ESessions(server.fetch([t.me.id]), stranger.repo)
		const local = await exists(`pre-key-${oldestId}.json`)
		try {
			await sendDirect(stranger, tenant, { fromJid: strangerJid, toJid: t.me.id, message: { conversation: 'hi' } })
			record('oldest-server-pre-key', `pre-key-${oldestId}`, 'info', 'decrypted')
		} catch (error) {
			record('oldest-server-pre-key', `pre-key-${oldestId}`, 'info', `${local ? 'kept' : 'deleted'} locally; first message not decryptable: ${error.message}`)
		}
	} catch (error) {
		record('oldest-server-pre-key', t.dir, 'info', `not probed: ${error.message}`)
	}

	// (e) protected state still loads (read-only)
	await attempt('app-state', tenant.creds.myAppStateKeyId || '(none)', async () => {
		const keyId = tenant.creds.myAppStateKeyId
		const { [keyId]: key } = await tenant.keys.get('app-state-sync-key', [keyId])
		if (!key?.keyData?.length) {
			throw new Error(`app-state-sync-key ${keyId} does not load`)
		}
		const names = Object.values(t.files).includes('app-state-sync-version')
			? Object.entries(t.files)
					.filter(([, type]) => type === 'app-state-sync-version')
					.map(([file]) => file.slice('app-state-sync-version-'.length, -'.json'.length))
			: []
		const versions = await tenant.keys.get('app-state-sync-version', names)
		const bad = names.filter(n => !(versions[n]?.version > 0) || versions[n]?.hash?.length !== 128)
		if (bad.length) {
			throw new Error(`app-state-sync-version does not load: ${bad}`)
		}
		return `key ${keyId}, versions ${names.map(n => `${n}@${versions[n].version}`).join(', ')}`
	})
	await attempt('lid-mapping', t.dir, async () => {
		const pairs = [[t.me.id, t.me.lid], ...t.contacts.filter(c => c.pn).map(c => [c.pn, c.jid])]
		const wrong = []
		for (const [pn, lid] of pairs) {
			const gotLid = await tenant.repo.lidMapping.getLIDForPN(pn)
			const gotPn = await tenant.repo.lidMapping.getPNForLID(lid)
			const lidUser = lid.split(/[:@]/)[0]
			const pnUser = pn.split(/[:@]/)[0]
			if (!gotLid?.startsWith(lidUser) || !gotPn?.startsWith(pnUser)) {
				wrong.push(`${pn} <-> ${lid}: got ${gotLid} / ${gotPn}`)
			}
		}
		if (wrong.length) {
			throw new Error(wrong.join('; '))
		}
		return `${pairs.length} mappings resolve both ways`
	})
}

async function main() {
	const args = parseArgs(process.argv.slice(2), { root: '', store: '', contactsDir: '', company: [], only: [] })
	if (!(args.root || args.store) || !args.contactsDir) {
		throw Object.assign(
			new Error('usage: verify_fleet.mjs (--root DIR | --store URL) --contacts-dir DIR2 [--company ID]... [--only CHECK:SUBJECT]...'),
			{ usage: true }
		)
	}
	const only = args.only.map(o => ({ check: o.slice(0, o.indexOf(':')), subject: o.slice(o.indexOf(':') + 1) }))
	if (only.some(o => !o.check)) {
		throw Object.assign(new Error('--only takes CHECK:SUBJECT'), { usage: true })
	}
	const contactsDir = path.resolve(args.contactsDir)
	const manifest = JSON.parse(await readFile(path.join(contactsDir, 'manifest.json'), 'utf-8'))
	const logger = makeLogger('verify')
	const tenants = manifest.tenants.filter(t => !args.company.length || args.company.includes(t.company) || args.company.includes(t.dir))
	await mkdir(contactsDir, { recursive: true })
	const started = Date.now()
	const results = []
	const backend = await openBackend({ store: args.store, root: args.root })
	try {
		for (const t of tenants) {
			try {
				await verifyTenant({ tenant: t, backend, only, contactsDir, logger, results })
			} catch (error) {
				results.push({ company: t.company, check: 'verify', subject: t.dir, status: 'failed', detail: error.stack || String(error) })
			}
		}
	} finally {
		await backend.close()
	}
	const count = status => results.filter(r => r.status === status).length
	const summary = {
		ok: count('failed') === 0 && results.length > 0,
		passed: count('passed'),
		failed: count('failed'),
		skipped: count('skipped'),
		info: count('info'),
		seconds: (Date.now() - started) / 1000,
		tenants: tenants.map(t => t.company),
		failures: results.filter(r => r.status === 'failed'),
		checks: results
	}
	process.stdout.write(JSON.stringify(summary, null, 1) + '\n')
	process.exit(summary.ok ? 0 : 1)
}

main().catch(error => {
	process.stderr.write(`verify_fleet: ${error.stack || error}\n`)
	process.exit(2)
})
