// The shape of the test fleet: who the tenant is, which contacts talk to it and
// how, and which groups they share. build_fleet.mjs writes it into the
// manifest; verify_fleet.mjs reads it back from there.

export const TENANT_DEVICE = 12

/** Tenant number k (0-based) of the fleet: its own PN/LID identity. */
export function tenantIdentity(company, k) {
	const pnUser = String(17770000000 + k)
	const lidUser = String(200000000000000 + k)
	return {
		pnUser,
		lidUser,
		me: {
			id: `${pnUser}:${TENANT_DEVICE}@s.whatsapp.net`,
			lid: `${lidUser}:${TENANT_DEVICE}@lid`,
			name: `Company ${company}`
		}
	}
}

/**
 * Contacts of a tenant. Fields:
 * - jid: the contact's device jid as the tenant addresses it (and as it appears
 *   as sender/participant once the chat is established);
 * - pn: its phone-number device jid when it also has a LID (first contact is
 *   PN-addressed with sender_lid, so the tenant learns the LID mapping);
 * - peer: which of the tenant's jids the contact talks to (PN device jid, or
 *   the LID device jid for LID-addressed chats);
 * - initiator: who sends the first (pkmsg) message;
 * - tctoken: the tenant receives a privacy-token notification from it.
 */
export function contactPlan({ pnUser, lidUser, me }) {
	return [
		{
			name: 'phone',
			role: 'own-primary-device',
			jid: `${pnUser}@s.whatsapp.net`,
			lid: `${lidUser}@lid`,
			peer: me.id,
			initiator: 'contact'
		},
		{ name: 'pn0', role: 'contact', jid: '15550000000@s.whatsapp.net', peer: me.id, initiator: 'contact', tctoken: true },
		{ name: 'md1', role: 'contact', jid: '15550000001:2@s.whatsapp.net', peer: me.id, initiator: 'contact' },
		{
			name: 'lid2',
			role: 'contact',
			jid: '100000000000002@lid',
			pn: '15550000002@s.whatsapp.net',
			peer: me.lid,
			initiator: 'contact',
			tctoken: true
		},
		{ name: 'out3', role: 'contact', jid: '15550000003@s.whatsapp.net', peer: me.id, initiator: 'tenant' },
		{ name: 'lid4', role: 'contact', jid: '100000000000004:3@lid', peer: me.lid, initiator: 'contact' },
		{ name: 'md5', role: 'contact', jid: '15550000005:7@s.whatsapp.net', peer: me.id, initiator: 'tenant' }
	]
}

export function groupPlan() {
	return [
		{ jid: '120363000000000000@g.us', addressingMode: 'pn', members: ['pn0', 'md1', 'out3'] },
		{ jid: '120363000000000001@g.us', addressingMode: 'lid', members: ['lid2', 'lid4'] }
	]
}

/** The tenant's jid as seen in a group of the given addressing mode (what encryptGroupMessage gets as meId). */
export const tenantGroupJid = (me, addressingMode) => (addressingMode === 'lid' ? me.lid : me.id)

/** Sender-key id of `senderJid` in `group`, as Baileys' SenderKeyName.toString() makes it. */
export function senderKeyId(repo, group, senderJid) {
	const address = repo.jidToSignalProtocolAddress(senderJid)
	const dot = address.lastIndexOf('.')
	return `${group}::${address.slice(0, dot)}::${address.slice(dot + 1)}`
}
