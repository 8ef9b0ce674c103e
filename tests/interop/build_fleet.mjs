#!/usr/bin/env node
// Build tenant auth-state folders the way a live Baileys 7.0.0-rc14 account
// writes them, without a network: pre-key upload, own LID mapping, app-state
// key share from the primary phone, app-state patches, 1:1 sessions with
// PN / multi-device / LID contacts, privacy tokens, and group sender keys.
//
//   node build_fleet.mjs (--root DIR | --store URL) --contacts-dir DIR2 [--company ID]...
//        [--prekeys N] [--contact-prekeys N]
//
// DIR/company_<id>/         the tenant folders (what wa-sessions maintains); or,
//                           with --store redis://... / mysql://..., each tenant's
//                           auth state in that store, instance / session <id>,
//                           as Evolution API / mysql-baileys write it
//                           (lib/auth_stores.mjs)
// DIR2/company_<id>/<name>/ each contact's own auth state
// DIR2/company_<id>/server.json  the fake WhatsApp key server of that tenant's
//                           world (uploaded bundles; contacts of different
//                           tenants share phone numbers but not keys)
// DIR2/manifest.json        tenants, contacts, groups, and file -> Baileys key type
//
// Prints the manifest path and a short summary as JSON on stdout.
import { randomBytes } from 'node:crypto'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
	INITIAL_PREKEY_COUNT,
	chatModificationToAppPatch,
	encodeSyncdPatch,
	ensureLTHashStateVersion,
	getDecryptionJid,
	jidDecode,
	newLTHashState,
	proto
} from 'baileys'
import processMessage from 'baileys/lib/Utils/process-message.js'
import { buildMergedTcTokenIndexWrite, resolveTcTokenJid, storeTcTokensFromIqResult } from 'baileys/lib/Utils/tc-token-utils.js'
import { openBackend } from './lib/auth_stores.mjs'
import { TENANT_DEVICE, contactPlan, groupPlan, senderKeyId, tenantGroupJid, tenantIdentity } from './lib/fleet.mjs'
import {
	BAILEYS_VERSION,
	KeyServer,
	keyFileName,
	makeLogger,
	messageId,
	nowSeconds,
	openAccount,
	parseArgs,
	sendDirect,
	sendGroup,
	uploadPreKeys
} from './lib/harness.mjs'

const COMPANY_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

// App-state sync key ids as WhatsApp hands them out (6 bytes); the second one
// has a '/' in its base64 form, which Baileys turns into '__' in the file name.
const APP_STATE_KEY_IDS = ['AAAAAB3x', 'AAAAAC/q']

function check(condition, message) {
	if (!condition) {
		throw new Error(`build_fleet: ${message}`)
	}
}

/** A minimal event emitter standing in for the socket's `ev`: creds.update goes to saveCreds. */
function makeEv(account, pending) {
	return {
		emit(event, data) {
			if (event === 'creds.update') {
				pending.push(account.updateCreds(data))
			}
			return true
		},
		on() {},
		off() {},
		buffer() {},
		flush() {
			return false
		}
	}
}

async function buildTenant({ company, index, backend, contactsDir, options, logger }) {
	const dirName = `company_${company}`
	const where = { company, dir: dirName }
	const tenantDir = path.join(backend.location, dirName)
	const { pnUser, lidUser, me } = tenantIdentity(company, index)
	const tenant = await openAccount(tenantDir, { logger, name: dirName, authState: await backend.authState(where) })
	const server = new KeyServer()
	const text = (() => {
		let n = 0
		return what => `${dirName} ${what} #${++n}`
	})()

	// --- pairing result + first connect --------------------------------------
	await tenant.updateCreds({ me, platform: 'android' })
	// socket.uploadPreKeysToServerIfRequired(): server has 0 -> INITIAL_PREKEY_COUNT
	const iq = await uploadPreKeys(tenant, options.prekeys)
	server.upload([me.id, me.lid], iq)
	// socket.js on 'success' with a lid: own LID mapping, own device list, migrate own session
	await tenant.repo.lidMapping.storeLIDPNMappings([{ lid: me.lid, pn: me.id }])
	await tenant.keys.set({ 'device-list': { [pnUser]: [String(jidDecode(me.id).device || 0)] } })
	await tenant.repo.migrateSession(me.id, me.lid)

	// --- contacts: each its own Baileys account with uploaded pre-keys ---------
	const contacts = contactPlan({ pnUser, lidUser, me })
	for (const contact of contacts) {
		contact.dir = path.join(dirName, contact.name)
		contact.account = await openAccount(path.join(contactsDir, contact.dir), { logger, name: `${dirName}/${contact.name}` })
		const contactMe = contact.pn ? { id: contact.pn, lid: contact.jid } : contact.lid ? { id: contact.jid, lid: contact.lid } : { id: contact.jid }
		await contact.account.updateCreds({ me: contactMe, platform: 'android' })
		const contactIq = await uploadPreKeys(contact.account, options.contactPrekeys)
		server.upload([contact.jid, ...(contact.pn ? [contact.pn] : []), ...(contact.lid ? [contact.lid] : [])], contactIq)
	}
	const byName = Object.fromEntries(contacts.map(c => [c.name, c]))

	// --- primary phone shares the app-state sync keys (peer message, fromMe) ----
	const phone = byName.phone
	const keyShare = {
		protocolMessage: {
			type: proto.Message.ProtocolMessage.Type.APP_STATE_SYNC_KEY_SHARE,
			appStateSyncKeyShare: {
				keys: APP_STATE_KEY_IDS.map((id, i) => ({
					keyId: { keyId: Buffer.from(id, 'base64') },
					keyData: {
						keyData: randomBytes(32),
						fingerprint: { rawId: 1000 + i, currentIndex: i, deviceIndexes: [0, TENANT_DEVICE_INDEX] },
						timestamp: Date.now()
					}
				}))
			}
		}
	}
	const { received: shareMsg } = await sendDirect(phone.account, tenant, {
		fromJid: phone.jid,
		toJid: phone.peer,
		message: keyShare,
		server,
		attrs: { category: 'peer' }
	})
	check(shareMsg.key.fromMe, 'key share from the primary phone must be fromMe')
	const pending = []
	await processMessage(shareMsg, {
		shouldProcessHistoryMsg: false,
		placeholderResendCache: undefined,
		ev: makeEv(tenant, pending),
		creds: tenant.creds,
		signalRepository: tenant.repo,
		keyStore: tenant.keys,
		logger,
		options: {},
		getMessage: async () => undefined
	})
	await Promise.all(pending)
	check(tenant.creds.myAppStateKeyId === APP_STATE_KEY_IDS.at(-1), `myAppStateKeyId is ${tenant.creds.myAppStateKeyId}`)

	// --- app-state patches (chats.appPatch without the IQ) ----------------------
	const getAppStateSyncKey = async keyId => (await tenant.keys.get('app-state-sync-key', [keyId]))[keyId]
	const patches = [
		chatModificationToAppPatch({ mute: Date.now() + 8 * 3600 * 1000 }, byName.pn0.jid),
		chatModificationToAppPatch({ pin: true }, byName.lid2.jid),
		chatModificationToAppPatch({ pushNameSetting: me.name }, '')
	]
	for (const patchCreate of patches) {
		await tenant.keys.transaction(async () => {
			const name = patchCreate.type
			const { [name]: current } = await tenant.keys.get('app-state-sync-version', [name])
			const initial = current ? ensureLTHashStateVersion(current) : newLTHashState()
			const { state } = await encodeSyncdPatch(patchCreate, tenant.creds.myAppStateKeyId, initial, getAppStateSyncKey)
			await tenant.keys.set({ 'app-state-sync-version': { [name]: state } })
		}, tenant.meId)
	}

	// --- 1:1 chats ---------------------------------------------------------------
	const tenantToContact = async (contact, what) => {
		// getUSyncDevices stores the device list of every user it resolves
		const { user, device } = jidDecode(contact.jid)
		await tenant.keys.set({ 'device-list': { [user]: [String(device || 0)] } })
		const { received } = await sendDirect(tenant, contact.account, {
			fromJid: contact.peer,
			toJid: contact.jid,
			message: { conversation: text(what) },
			server
		})
		return received
	}
	const contactToTenant = async (contact, what, attrs = {}, fromJid = contact.jid) => {
		const body = text(what)
		const { type, received } = await sendDirect(contact.account, tenant, {
			fromJid,
			toJid: contact.peer,
			message: { conversation: body },
			server,
			attrs
		})
		check(received.message?.conversation === body, `tenant got ${JSON.stringify(received.message)} from ${contact.name}`)
		return type
	}
	for (const contact of contacts) {
		if (contact === phone) {
			// our primary phone writes to us (a peer pkmsg), and we mirror a sent
			// message to it as Baileys does for our other devices (deviceSentMessage)
			await contactToTenant(contact, 'phone note')
			await tenant.keys.set({ 'device-list': { [pnUser]: ['0', String(TENANT_DEVICE)] } })
			await sendDirect(tenant, contact.account, {
				fromJid: contact.peer,
				toJid: contact.jid,
				message: { deviceSentMessage: { destinationJid: byName.pn0.jid, message: { conversation: text('sent from companion') } } },
				server
			})
			await contactToTenant(contact, 'phone note 2')
			continue
		}
		if (contact.initiator === 'contact') {
			// a LID contact first writes PN-addressed, announcing its LID (sender_lid)
			const type = contact.pn
				? await contactToTenant(contact, 'hello', { sender_lid: contact.jid }, contact.pn)
				: await contactToTenant(contact, 'hello')
			check(type === 'pkmsg', `${contact.name}: first message should be pkmsg, was ${type}`)
			await tenantToContact(contact, 'reply')
		} else {
			await tenantToContact(contact, 'hello')
			await contactToTenant(contact, 'reply')
		}
		await tenantToContact(contact, 'ack')
		await contactToTenant(contact, 'thanks')
		await tenantToContact(contact, 'bye')
	}

	// --- privacy tokens (messages-recv handlePrivacyTokenNotification) ---------
	const getLIDForPN = tenant.repo.lidMapping.getLIDForPN.bind(tenant.repo.lidMapping)
	const tokenJids = []
	for (const contact of contacts.filter(c => c.tctoken)) {
		const from = contact.pn || contact.jid
		const node = {
			tag: 'notification',
			attrs: { from, type: 'privacy_token', id: messageId(), t: String(nowSeconds()), ...(contact.pn ? { sender_lid: contact.jid } : {}) },
			content: [
				{
					tag: 'tokens',
					attrs: {},
					content: [{ tag: 'token', attrs: { jid: tenant.meId, t: String(nowSeconds()), type: 'trusted_contact' }, content: randomBytes(27) }]
				}
			]
		}
		const fallbackJid = contact.pn ? contact.jid : await resolveTcTokenJid(from, getLIDForPN)
		await storeTcTokensFromIqResult({ result: node, fallbackJid, keys: tenant.keys, getLIDForPN, onNewJidStored: j => tokenJids.push(j) })
	}
	// flushTcTokenIndex()
	await tenant.keys.set({ tctoken: await buildMergedTcTokenIndexWrite(tenant.keys, tokenJids) })

	// --- groups --------------------------------------------------------------
	const groups = groupPlan()
	for (const group of groups) {
		const members = group.members.map(name => byName[name])
		const tenantJid = tenantGroupJid(me, group.addressingMode)
		const round = async what => {
			for (const member of members) {
				const { results } = await sendGroup(member.account, {
					group: group.jid,
					senderJid: member.jid,
					addressingMode: group.addressingMode,
					recipients: [{ account: tenant, jid: tenantJid }],
					text: text(`${what} from ${member.name} in ${group.jid}`),
					server
				})
				check(results.every(r => r.ok), `group message of ${member.name}: ${JSON.stringify(results)}`)
			}
			const { results } = await sendGroup(tenant, {
				group: group.jid,
				senderJid: tenantJid,
				addressingMode: group.addressingMode,
				recipients: members.map(m => ({ account: m.account, jid: m.jid })),
				text: text(`${what} from tenant in ${group.jid}`),
				server
			})
			check(results.every(r => r.ok), `tenant group message: ${JSON.stringify(results)}`)
		}
		await round('first')
		await round('second')
		group.tenantSenderJid = tenantJid
		group.ownSenderKeyFile = keyFileName('sender-key', senderKeyId(tenant.repo, group.jid, tenantJid))
		group.memoryFile = keyFileName('sender-key-memory', group.jid)
		group.memberFiles = members.map(m => ({
			contact: m.name,
			jid: m.jid,
			senderKeyFile: keyFileName('sender-key', senderKeyId(tenant.repo, group.jid, m.jid))
		}))
		for (const file of [group.ownSenderKeyFile, group.memoryFile, ...group.memberFiles.map(m => m.senderKeyFile)]) {
			check(tenant.files.has(file), `expected ${file} in ${dirName}; have ${[...tenant.files.keys()].filter(f => f.startsWith('sender')).join(', ')}`)
		}
	}

	// --- what each contact left in the tenant folder ---------------------------
	for (const contact of contacts) {
		const address = tenant.repo.jidToSignalProtocolAddress(await getDecryptionJid(contact.jid, tenant.repo))
		contact.tenantSessionFile = keyFileName('session', address)
		const identity = keyFileName('identity-key', address)
		contact.tenantIdentityFile = tenant.files.has(identity) ? identity : null
		check(tenant.files.get(contact.tenantSessionFile) === 'session', `no ${contact.tenantSessionFile} for ${contact.name}`)
	}

	// --- cross-check: every entry of the folder (key of the store) was written by a recorded key type
	const onDisk = await backend.keyFiles(where)
	const recorded = [...tenant.files.keys()].sort()
	const missing = recorded.filter(f => !onDisk.includes(f))
	const unexplained = onDisk.filter(f => !tenant.files.has(f))
	check(!missing.length && !unexplained.length, `${backend.kind} listing != recorded writes: missing ${missing}, unexplained ${unexplained}`)
	for (const file of backend.kind === 'folder' ? onDisk : []) {
		check((await stat(path.join(tenantDir, file))).isFile(), `${file} is not a regular file`)
	}

	const files = Object.fromEntries(recorded.map(f => [f, tenant.files.get(f)]))
	await server.save(path.join(contactsDir, dirName, 'server.json'))
	return {
		company,
		dir: dirName,
		index,
		me,
		registrationId: tenant.creds.registrationId,
		nextPreKeyId: tenant.creds.nextPreKeyId,
		firstUnuploadedPreKeyId: tenant.creds.firstUnuploadedPreKeyId,
		myAppStateKeyId: tenant.creds.myAppStateKeyId,
		appStateSyncKeyIds: APP_STATE_KEY_IDS,
		files,
		contacts: contacts.map(({ account, ...rest }) => rest),
		groups: groups.map(g => ({
			jid: g.jid,
			addressingMode: g.addressingMode,
			tenantSenderJid: g.tenantSenderJid,
			ownSenderKeyFile: g.ownSenderKeyFile,
			memoryFile: g.memoryFile,
			members: g.memberFiles
		}))
	}
}

// fingerprint.deviceIndexes of the key share: the primary (0) and our companion
const TENANT_DEVICE_INDEX = 1

async function main() {
	const args = parseArgs(process.argv.slice(2), {
		root: '',
		store: '',
		contactsDir: '',
		company: [],
		prekeys: INITIAL_PREKEY_COUNT,
		contactPrekeys: 20
	})
	check(
		(args.root || args.store) && args.contactsDir,
		'usage: build_fleet.mjs (--root DIR | --store URL) --contacts-dir DIR2 [--company ID]... [--prekeys N]'
	)
	const companies = args.company.length ? args.company : ['962302']
	for (const company of companies) {
		check(COMPANY_RE.test(company), `bad company id ${JSON.stringify(company)}`)
	}
	check(new Set(companies).size === companies.length, 'duplicate --company')
	check(Number.isInteger(args.prekeys) && args.prekeys > 0, '--prekeys must be a positive integer')
	const root = args.store ? null : path.resolve(args.root)
	const contactsDir = path.resolve(args.contactsDir)
	if (root) {
		const rel = path.relative(root, contactsDir)
		check(rel.startsWith('..') || path.isAbsolute(rel), '--contacts-dir must be outside --root')
		await mkdir(root, { recursive: true })
	}
	await mkdir(contactsDir, { recursive: true })

	const logger = makeLogger('build')
	const started = Date.now()
	const tenants = []
	const backend = await openBackend({ store: args.store, root })
	try {
		for (const [index, company] of companies.entries()) {
			tenants.push(await buildTenant({ company, index, backend, contactsDir, options: args, logger }))
		}
	} finally {
		await backend.close()
	}
	const manifest = {
		version: 1,
		baileys: BAILEYS_VERSION,
		generatedAt: new Date().toISOString(),
		root,
		store: backend.kind === 'folder' ? null : backend.location,
		contactsDir,
		options: { prekeys: args.prekeys, contactPrekeys: args.contactPrekeys },
		tenants
	}
	const manifestPath = path.join(contactsDir, 'manifest.json')
	await writeFile(manifestPath, JSON.stringify(manifest, null, 1))
	const summary = {
		manifest: manifestPath,
		seconds: (Date.now() - started) / 1000,
		tenants: tenants.map(t => {
			const counts = {}
			for (const type of Object.values(t.files)) {
				counts[type] = (counts[type] || 0) + 1
			}
			return { company: t.company, files: Object.keys(t.files).length, types: counts }
		})
	}
	process.stdout.write(JSON.stringify(summary) + '\n')
}

main().catch(error => {
	process.stderr.write(`build_fleet failed: ${error.stack || error}\n`)
	process.exit(1)
})
