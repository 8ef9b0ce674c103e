// Where a tenant's auth state lives. Each backend hands Baileys the same
// { state, saveCreds } that useMultiFileAuthState does; only the storage differs:
//
//  folder  <root>/company_<id>/ written by Baileys' useMultiFileAuthState.
//  redis   Evolution API v2: useMultiFileAuthStateRedisDb over CacheService +
//          RedisCache (module 'instance'): one hash <prefix>:instance:<id>, field
//          `creds` and raw `<type>-<id>` fields, each value
//          JSON.stringify(JSON.stringify(value, BufferJSON.replacer)).
//          Source: EvolutionAPI/evolution-api src/utils/use-multi-file-auth-state-redis-db.ts,
//          src/api/services/cache.service.ts, src/cache/rediscache.ts (commit 3454bec).
//  mysql   mysql-baileys' useMySQLAuthState (src/Mysql/index.ts, 1.5.6 = commit 46a5ac4): table
//          auth(session, id, value), row id `creds` and `<type>-<id>`, value
//          JSON.stringify(value, BufferJSON.replacer), written with its own
//          INSERT ... ON DUPLICATE KEY UPDATE through mysql2.
//
// The tenant of a store is its company id: the Evolution instance id, the
// mysql-baileys session. Key names are compared as wa-sessions and Baileys'
// folders name them: keyFileName(type, id).
import { access, readdir } from 'node:fs/promises'
import path from 'node:path'
import { BufferJSON, initAuthCreds, proto, useMultiFileAuthState } from 'baileys'
import { fixFileName } from './harness.mjs'

const fileNameOfKey = key => fixFileName(`${key}.json`)

/** Baileys' key-store interface over readData/writeData/removeData, the shape both writers share. */
function keyStoreOver({ readData, writeData, removeData, appStateKey, parallelGet }) {
	return {
		get: async (type, ids) => {
			const data = {}
			const load = async id => {
				let value = await readData(`${type}-${id}`)
				if (type === 'app-state-sync-key' && value) {
					value = appStateKey(value)
				}
				data[id] = value
			}
			if (parallelGet) {
				await Promise.all(ids.map(load))
			} else {
				for (const id of ids) {
					await load(id)
				}
			}
			return data
		},
		set: async data => {
			for (const category in data) {
				for (const id in data[category]) {
					const value = data[category][id]
					const key = `${category}-${id}`
					await (value ? writeData(value, key) : removeData(key))
				}
			}
		}
	}
}

async function authStateOver(io) {
	const creds = (await io.readData('creds')) || initAuthCreds()
	return {
		state: { creds, keys: keyStoreOver(io) },
		saveCreds: () => io.writeData(creds, 'creds')
	}
}

// ------------------------------------------------------------------ folders

function folderBackend(root) {
	return {
		kind: 'folder',
		location: root,
		authState: tenant => useMultiFileAuthState(path.join(root, tenant.dir)),
		keyFiles: async tenant => (await readdir(path.join(root, tenant.dir))).sort(),
		has: (tenant, file) =>
			access(path.join(root, tenant.dir, file)).then(
				() => true,
				() => false
			),
		close: async () => {}
	}
}

// ------------------------------------------------------------------ Evolution API's Redis

async function redisBackend(url) {
	const { createClient } = await import('redis')
	const prefix = url.searchParams.get('prefix') || 'evolution-cache'
	const plain = new URL(url)
	plain.search = ''
	const client = createClient({ url: plain.toString() })
	await client.connect()
	// RedisCache.buildKey with module 'instance' (server.module.ts: new CacheEngine(configService, 'instance'))
	const hashOf = instance => `${prefix}:instance:${instance}`
	// CacheService.hSet/hGet/hDelete over RedisCache's: the value is stringified twice, parsed twice.
	const cache = {
		async hSet(instance, field, value) {
			const json = JSON.stringify(value, BufferJSON.replacer) // CacheService.hSet
			await client.hSet(hashOf(instance), field, JSON.stringify(json, BufferJSON.replacer)) // RedisCache.hSet
		},
		async hGet(instance, field) {
			const data = await client.hGet(hashOf(instance), field)
			const inner = data ? JSON.parse(data, BufferJSON.reviver) : null // RedisCache.hGet
			return inner ? JSON.parse(inner, BufferJSON.reviver) : null // CacheService.hGet
		},
		hDelete: (instance, field) => client.hDel(hashOf(instance), field)
	}
	const keyFiles = async tenant => (await client.hKeys(hashOf(tenant.company))).map(fileNameOfKey).sort()
	return {
		kind: 'redis',
		location: url.toString(),
		// useMultiFileAuthStateRedisDb(instanceName, cache)
		authState: tenant =>
			authStateOver({
				readData: key => cache.hGet(tenant.company, key),
				writeData: (data, key) => cache.hSet(tenant.company, key, data),
				removeData: key => cache.hDelete(tenant.company, key),
				appStateKey: value => proto.Message.AppStateSyncKeyData.create(value),
				parallelGet: true
			}),
		keyFiles,
		has: async (tenant, file) => (await keyFiles(tenant)).includes(file),
		close: () => client.quit()
	}
}

// ------------------------------------------------------------------ mysql-baileys' table

// mysql-baileys 1.5.4's connection(): the table it creates when missing (1.5.1
// and before made `value` json: on MariaDB an alias of LONGTEXT with a
// JSON_VALID check; the same text either way).
const createTable = table =>
	'CREATE TABLE IF NOT EXISTS `' +
	table +
	'` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL, `value` LONGTEXT DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession` (`session`), KEY `idxid` (`id`)) ENGINE=MyISAM;'

async function mysqlBackend(url) {
	const mysql = await import('mysql2/promise')
	const table = url.searchParams.get('table') || 'auth'
	const conn = await mysql.createConnection({
		host: url.hostname,
		port: Number(url.port || 3306),
		user: decodeURIComponent(url.username),
		password: decodeURIComponent(url.password),
		database: decodeURIComponent(url.pathname.slice(1))
	})
	await conn.execute(createTable(table))
	const query = async (sql, values) => (await conn.query(sql, values))[0]
	// useMySQLAuthState's readData / writeData / removeData, SQL as written there
	const io = session => ({
		readData: async id => {
			const data = await query(`SELECT value FROM ${table} WHERE id = ? AND session = ?`, [id, session])
			if (!data[0]?.value) {
				return null
			}
			// 1.5.6's readData. 1.5.4's JSON.parse'd every value, turning the plain strings
			// writeData stores unquoted (lid-mapping values) into numbers: Baileys 7 then
			// finds no session for a LID contact ("No session record").
			const value = data[0].value
			if (/^[\{\[]/.test(value)) {
				return JSON.parse(value, BufferJSON.reviver)
			}
			return value
		},
		writeData: async (value, id) => {
			const valueFixed = typeof value === 'object' ? JSON.stringify(value, BufferJSON.replacer) : value
			await query(`INSERT INTO ${table} (session, id, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = ?`, [
				session,
				id,
				valueFixed,
				valueFixed
			])
		},
		removeData: async id => {
			await query(`DELETE FROM ${table} WHERE id = ? AND session = ?`, [id, session])
		},
		appStateKey: value => proto.Message.AppStateSyncKeyData.fromObject(value),
		parallelGet: false
	})
	const keyFiles = async tenant =>
		(await query(`SELECT id FROM ${table} WHERE session = ?`, [tenant.company])).map(row => fileNameOfKey(row.id)).sort()
	return {
		kind: 'mysql',
		location: `mysql://${url.host}${url.pathname}?table=${table}`,
		authState: tenant => authStateOver(io(tenant.company)),
		keyFiles,
		has: async (tenant, file) => (await keyFiles(tenant)).includes(file),
		close: () => conn.end()
	}
}

/**
 * The backend of `--store URL` (redis://..., mysql://...), or of the folders under `root`
 * when there is no URL. Call close() when done.
 */
export async function openBackend({ store, root }) {
	if (!store) {
		if (!root) {
			throw new Error('--root DIR or --store URL is needed')
		}
		return folderBackend(path.resolve(root))
	}
	const url = new URL(store)
	if (url.protocol === 'redis:') {
		return redisBackend(url)
	}
	if (url.protocol === 'mysql:') {
		return mysqlBackend(url)
	}
	throw new Error(`--store: unsupported scheme ${url.protocol} (redis:// or mysql://)`)
}
