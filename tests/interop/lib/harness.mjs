// Shared machinery of the interop harness: Baileys accounts on disk, an
// in-memory "wire" that carries message stanzas between them, and a fake
// pre-key server. Everything cryptographic and everything written to an
// auth-state folder is done by Baileys' own code (useMultiFileAuthState,
// addTransactionCapability, makeCacheableSignalKeyStore, the libsignal
// repository, decryptMessageNode, getNextPreKeysNode, parseAndInjectE2ESessions).
import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { format } from 'node:util'
import {
	DEFAULT_CONNECTION_CONFIG,
	addTransactionCapability,
	assertNodeErrorFree,
	decryptMessageNode,
	encodeBigEndian,
	encodeWAMessage,
	getBinaryNodeChild,
	getBinaryNodeChildBuffer,
	getBinaryNodeChildren,
	getBinaryNodeChildUInt,
	getNextPreKeysNode,
	jidDecode,
	jidEncode,
	makeCacheableSignalKeyStore,
	parseAndInjectE2ESessions,
	useMultiFileAuthState,
	KEY_BUNDLE_TYPE
} from 'baileys'

export const BAILEYS_VERSION = '7.0.0-rc14'

// libsignal reports session changes with console.log/console.info ("Closing
// open session in favor of incoming prekey bundle"); stdout of the scripts is
// reserved for their JSON result, so every console method goes to stderr.
for (const method of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
	console[method] = (...args) => {
		if (process.env.INTEROP_LOG) {
			process.stderr.write(`${format(...args)}\n`)
		}
	}
}

/** Baileys' own file-name mapping in useMultiFileAuthState (not exported by it). */
export const fixFileName = file => file?.replace(/\//g, '__')?.replace(/:/g, '-')

/** File name Baileys' useMultiFileAuthState uses for key `id` of `type`. */
export const keyFileName = (type, id) => fixFileName(`${type}-${id}.json`)

export function makeLogger(name = 'interop') {
	const verbose = !!process.env.INTEROP_LOG
	const emit = level => (...args) => {
		if (verbose) {
			const parts = args.map(a => (typeof a === 'string' ? a : safeJson(a)))
			process.stderr.write(`[${name}] ${level}: ${parts.join(' ')}\n`)
		}
	}
	const logger = {
		level: verbose ? 'warn' : 'silent',
		child: () => logger,
		trace() {},
		debug() {},
		info() {},
		warn: emit('warn'),
		error: emit('error'),
		fatal: emit('fatal')
	}
	return logger
}

function safeJson(value) {
	try {
		return JSON.stringify(value, (_k, v) => (v instanceof Error ? `${v.name}: ${v.message}` : v))
	} catch {
		return String(value)
	}
}

export const messageId = () => randomBytes(8).toString('hex').toUpperCase()
export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A device jid string for (user, device, server), device 0 written without ':0' as WhatsApp does. */
export function deviceJid(user, device, server) {
	return jidEncode(user, server, device || undefined)
}

/** Normalise any user/device jid to one canonical key (used by the fake server). */
export function canonicalJid(jid) {
	const decoded = jidDecode(jid)
	if (!decoded?.user) {
		throw new Error(`not a user jid: ${jid}`)
	}
	return deviceJid(decoded.user, decoded.device || 0, decoded.server)
}

/**
 * Open (or create) a Baileys auth-state folder the way a socket does:
 * useMultiFileAuthState -> makeCacheableSignalKeyStore (as Baileys' README
 * recommends) -> addTransactionCapability (what makeSocket does) ->
 * makeLibSignalRepository (DEFAULT_CONNECTION_CONFIG.makeSignalRepository).
 * `authState` ({ state, saveCreds } of another backend, lib/auth_stores.mjs)
 * replaces useMultiFileAuthState(dir).
 *
 * Every keys.set that reaches useMultiFileAuthState is recorded in `files`
 * (file name -> key type) so callers know which Baileys key type wrote which
 * file; deletions (null values) remove the entry.
 */
export async function openAccount(dir, { logger = makeLogger(), name = dir, authState } = {}) {
	const { state, saveCreds } = authState ?? (await useMultiFileAuthState(dir))
	const files = new Map()
	const raw = state.keys
	const recordingStore = {
		get: (type, ids) => raw.get(type, ids),
		async set(data) {
			await raw.set(data)
			for (const type in data) {
				for (const id in data[type]) {
					const file = keyFileName(type, id)
					if (data[type][id]) {
						files.set(file, type)
					} else {
						files.delete(file)
					}
				}
			}
		}
	}
	const keys = addTransactionCapability(
		makeCacheableSignalKeyStore(recordingStore, logger),
		logger,
		DEFAULT_CONNECTION_CONFIG.transactionOpts
	)
	// No network: the USync PN->LID lookup finds nothing, as for a contact without a LID.
	const pnToLid = async () => []
	const repo = DEFAULT_CONNECTION_CONFIG.makeSignalRepository({ creds: state.creds, keys }, logger, pnToLid)
	const account = {
		name,
		dir,
		creds: state.creds,
		keys,
		repo,
		files,
		logger,
		/** what Baileys' socket does on 'creds.update' + the app's saveCreds listener */
		async updateCreds(update) {
			Object.assign(state.creds, update)
			await saveCreds()
			files.set('creds.json', 'creds')
		},
		get meId() {
			return state.creds.me?.id
		},
		get meLid() {
			return state.creds.me?.lid
		}
	}
	return account
}

/**
 * Generate and "upload" a batch of pre-keys exactly as Baileys' socket
 * uploadPreKeys() does: getNextPreKeysNode inside a key-store transaction,
 * then creds.update with the new nextPreKeyId/firstUnuploadedPreKeyId.
 * Returns the IQ node that would go to the server.
 */
export async function uploadPreKeys(account, count) {
	const node = await account.keys.transaction(async () => {
		const { update, node } = await getNextPreKeysNode({ creds: account.creds, keys: account.keys }, count)
		await account.updateCreds(update)
		return node
	}, account.meId || 'upload-pre-keys')
	return node
}

/**
 * The server side of the key exchange: keeps what accounts uploaded with
 * xmlns=encrypt IQs and answers bundle fetches (each one-time pre-key is
 * handed out once, oldest first, as WhatsApp's server does).
 */
export class KeyServer {
	constructor(data) {
		this.data = data || { devices: {}, aliases: {} }
	}

	static async load(file) {
		return new KeyServer(JSON.parse(await readFile(file, 'utf-8')))
	}

	async save(file) {
		await writeFile(`${file}.tmp`, JSON.stringify(this.data, null, 1))
		await rename(`${file}.tmp`, file)
	}

	resolve(jid) {
		const key = canonicalJid(jid)
		return this.data.aliases[key] || key
	}

	/** Register `jids` (first one primary, the others aliases: PN and LID device jid) with an upload IQ. */
	upload(jids, iq) {
		const primary = canonicalJid(jids[0])
		for (const jid of jids.slice(1)) {
			this.data.aliases[canonicalJid(jid)] = primary
		}
		const device = this.data.devices[primary] || { preKeys: {} }
		device.registrationId = getBinaryNodeChildUInt(iq, 'registration', 4)
		device.identity = getBinaryNodeChildBuffer(iq, 'identity').toString('base64')
		const skey = getBinaryNodeChild(iq, 'skey')
		device.signedPreKey = {
			id: getBinaryNodeChildUInt(skey, 'id', 3),
			value: getBinaryNodeChildBuffer(skey, 'value').toString('base64'),
			signature: getBinaryNodeChildBuffer(skey, 'signature').toString('base64')
		}
		for (const key of getBinaryNodeChildren(getBinaryNodeChild(iq, 'list'), 'key')) {
			const id = getBinaryNodeChildUInt(key, 'id', 3)
			device.preKeys[id] = getBinaryNodeChildBuffer(key, 'value').toString('base64')
		}
		this.data.devices[primary] = device
	}

	preKeyIds(jid) {
		const device = this.data.devices[this.resolve(jid)]
		return device ? Object.keys(device.preKeys).map(Number).sort((a, b) => a - b) : []
	}

	/**
	 * The `user` node of an encrypt/get "key" IQ result for `jid`. By default
	 * hands out (and forgets) the oldest pre-key; `preKeyId` asks for one
	 * specific id (used to fetch the newest one).
	 */
	userNode(jid, { preKeyId } = {}) {
		const device = this.data.devices[this.resolve(jid)]
		if (!device) {
			throw new Error(`key server: no keys uploaded for ${jid}`)
		}
		const ids = Object.keys(device.preKeys).map(Number).sort((a, b) => a - b)
		const id = preKeyId !== undefined ? preKeyId : ids[0]
		const content = [
			{ tag: 'registration', attrs: {}, content: encodeBigEndian(device.registrationId) },
			{ tag: 'type', attrs: {}, content: KEY_BUNDLE_TYPE },
			{ tag: 'identity', attrs: {}, content: Buffer.from(device.identity, 'base64') },
			{
				tag: 'skey',
				attrs: {},
				content: [
					{ tag: 'id', attrs: {}, content: encodeBigEndian(device.signedPreKey.id, 3) },
					{ tag: 'value', attrs: {}, content: Buffer.from(device.signedPreKey.value, 'base64') },
					{ tag: 'signature', attrs: {}, content: Buffer.from(device.signedPreKey.signature, 'base64') }
				]
			}
		]
		if (id !== undefined) {
			const value = device.preKeys[id]
			if (!value) {
				throw new Error(`key server: pre-key ${id} of ${jid} is not available (already handed out?)`)
			}
			content.push({
				tag: 'key',
				attrs: {},
				content: [
					{ tag: 'id', attrs: {}, content: encodeBigEndian(id, 3) },
					{ tag: 'value', attrs: {}, content: Buffer.from(value, 'base64') }
				]
			})
			delete device.preKeys[id]
		}
		return { node: { tag: 'user', attrs: { jid }, content }, preKeyId: id }
	}

	/** Full IQ result, as the socket's assertSessions gets it back. */
	fetch(jids, options = {}) {
		const users = jids.map(jid => this.userNode(jid, options).node)
		return {
			tag: 'iq',
			attrs: { type: 'result', from: 's.whatsapp.net' },
			content: [{ tag: 'list', attrs: {}, content: users }]
		}
	}
}

/** Baileys' assertSessions: make sure `account` has an open session with `jid`, fetching a bundle if not. */
export async function assertSession(account, jid, server, options = {}) {
	const { exists } = await account.repo.validateSession(jid)
	if (exists && !options.force) {
		return false
	}
	const result = server.fetch([jid], options)
	assertNodeErrorFree(result)
	await parseAndInjectE2ESessions(result, account.repo)
	return true
}

function encNode(type, ciphertext) {
	return { tag: 'enc', attrs: { v: '2', type }, content: ciphertext }
}

/**
 * Receive a message stanza with Baileys' decryptMessageNode. Throws when
 * Baileys could not decrypt it (it marks such a message as a CIPHERTEXT stub).
 */
export async function receive(account, stanza) {
	const { fullMessage, decrypt } = decryptMessageNode(
		stanza,
		account.meId,
		account.meLid || '',
		account.repo,
		account.logger
	)
	await decrypt()
	if (fullMessage.messageStubType) {
		const reason = (fullMessage.messageStubParameters || []).join('; ')
		throw new Error(`${account.name} could not decrypt ${stanza.attrs.id} from ${stanza.attrs.participant || stanza.attrs.from}: ${reason}`)
	}
	return fullMessage
}

/**
 * One 1:1 message from `sender` to `recipient`.
 * fromJid: the sender's device jid as the recipient sees it (stanza "from");
 * toJid: the recipient's device jid as the sender addresses it.
 */
export async function sendDirect(sender, recipient, { fromJid, toJid, message, server, attrs = {} }) {
	if (server) {
		await assertSession(sender, toJid, server)
	}
	const { type, ciphertext } = await sender.repo.encryptMessage({ jid: toJid, data: encodeWAMessage(message) })
	const stanza = {
		tag: 'message',
		attrs: { from: fromJid, id: messageId(), t: String(nowSeconds()), type: 'text', ...attrs },
		content: [encNode(type, ciphertext)]
	}
	const received = await receive(recipient, stanza)
	return { type, received }
}

/**
 * A group message sent the way Baileys' relayMessage does it: encrypt with our
 * sender key (encryptGroupMessage), send the sender-key distribution message
 * over 1:1 sessions to every recipient device not yet listed in
 * sender-key-memory, then store sender-key-memory. Each recipient then
 * receives the stanza with decryptMessageNode.
 *
 * recipients: [{ account, jid }] where jid is the recipient's device jid as the sender addresses it.
 * Returns { distributedTo: [jid], results: [{ jid, ok, error?, text? }] }.
 */
export async function sendGroup(sender, { group, senderJid, addressingMode, recipients, text, server, memory = true }) {
	const { [group]: stored } = await sender.keys.get('sender-key-memory', [group])
	const senderKeyMap = memory ? { ...(stored || {}) } : {}
	const { ciphertext, senderKeyDistributionMessage } = await sender.repo.encryptGroupMessage({
		group,
		meId: senderJid,
		data: encodeWAMessage({ conversation: text })
	})
	const distributedTo = []
	const perRecipient = new Map()
	for (const { jid } of recipients) {
		if (senderKeyMap[jid]) {
			continue
		}
		await assertSession(sender, jid, server)
		const { type, ciphertext: skdmCipher } = await sender.repo.encryptMessage({
			jid,
			data: encodeWAMessage({
				senderKeyDistributionMessage: {
					groupId: group,
					axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage
				}
			})
		})
		perRecipient.set(jid, encNode(type, skdmCipher))
		senderKeyMap[jid] = true
		distributedTo.push(jid)
	}
	if (memory) {
		await sender.keys.set({ 'sender-key-memory': { [group]: senderKeyMap } })
	}
	const results = []
	for (const { account, jid } of recipients) {
		const content = []
		if (perRecipient.has(jid)) {
			content.push(perRecipient.get(jid))
		}
		content.push(encNode('skmsg', ciphertext))
		const stanza = {
			tag: 'message',
			attrs: {
				from: group,
				participant: senderJid,
				addressing_mode: addressingMode,
				id: messageId(),
				t: String(nowSeconds()),
				type: 'text'
			},
			content
		}
		try {
			const received = await receive(account, stanza)
			const got = received.message?.conversation
			if (got !== text) {
				throw new Error(`decrypted text ${JSON.stringify(got)} != ${JSON.stringify(text)}`)
			}
			results.push({ jid, ok: true })
		} catch (error) {
			results.push({ jid, ok: false, error: error.message })
		}
	}
	return { distributedTo, results }
}

export function parseArgs(argv, spec) {
	const out = {}
	for (const [key, def] of Object.entries(spec)) {
		out[key] = Array.isArray(def) ? [] : def
	}
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i]
		if (!arg.startsWith('--')) {
			throw new Error(`unexpected argument ${arg}`)
		}
		const key = arg.slice(2).replace(/-([a-z])/g, (_m, c) => c.toUpperCase())
		if (!(key in spec)) {
			throw new Error(`unknown option ${arg}`)
		}
		if (typeof spec[key] === 'boolean') {
			out[key] = true
			continue
		}
		const value = argv[++i]
		if (value === undefined) {
			throw new Error(`option ${arg} needs a value`)
		}
		if (Array.isArray(spec[key])) {
			out[key].push(value)
		} else if (typeof spec[key] === 'number') {
			out[key] = Number(value)
		} else {
			out[key] = value
		}
	}
	return out
}
