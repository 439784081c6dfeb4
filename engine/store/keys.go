package store

import (
	"encoding/binary"

	"github.com/spinecdp/spine/schemas/canon"
)

const (
	pID      = 'i'
	pProfile = 'p'
	pAlias   = 'x'
	pEdge    = 'e'
	pEvent   = 'v'
	pDedup   = 'd'
	pOffset  = 'o'
	pLog     = 'l'
	pCursor  = 'c'
	pMeta    = 'm'
	pErased  = 'h'
	pQuar    = 'q'
	pCand    = 'k'
	pAccount = 'g'
	pPurge   = 'z'
	pHeld    = 'r'
	pRefile  = 'f'
)

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// key starts a key of the given prefix with room for n more bytes, so that
// building it allocates once: keys are built for every read and write.
func key(prefix byte, n int) []byte {
	b := make([]byte, 1, 1+n)
	b[0] = prefix
	return b
}

// keyOf is a key of the prefix followed by s.
func keyOf(prefix byte, s string) []byte { return append(key(prefix, len(s)), s...) }

func keyID(idkey string) []byte { return keyOf(pID, idkey) }

func keyProfile(comp uint64) []byte { return binary.BigEndian.AppendUint64(key(pProfile, 8), comp) }

func keyAlias(pid string) []byte { return keyOf(pAlias, pid) }

// withLen writes a length-prefixed idkey, so that keys of one identifier
// form a prefix no other identifier's keys can share; extra is the room
// left for what follows.
func withLen(prefix byte, idkey string, extra int) []byte {
	n := 1 // the length's varint bytes
	for v := len(idkey); v >= 0x80; v >>= 7 {
		n++
	}
	b := binary.AppendUvarint(key(prefix, n+len(idkey)+extra), uint64(len(idkey)))
	return append(b, idkey...)
}

func keyEdge(a, b string) []byte { return append(withLen(pEdge, a, len(b)), b...) }

// keyLink is where a link is stored: under its lower idkey, once. (Stores
// of format 5 and older hold it both ways.)
func keyLink(a, b string) []byte {
	if b < a {
		a, b = b, a
	}
	return keyEdge(a, b)
}

func keyEvent(idkey string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(withLen(pEvent, idkey, 8), seq)
}

func keyDedup(ch canon.Channel, msgID string) []byte {
	b := append(key(pDedup, len(ch)+1+len(msgID)), ch...)
	b = append(b, 0)
	return append(b, msgID...)
}

func keyOffset(p canon.Partition) []byte {
	b := append(key(pOffset, len(p.Topic)+1+4), p.Topic...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, uint32(p.Partition))
}

// keyLogPage keys a page of change records by its first and last seq, so
// pages sort by seq and a key alone says which records a page holds.
func keyLogPage(first, last uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(key(pLog, 16), first), last)
}

// parseLogKey returns the seqs a change-log key covers: a page's first and
// last, or one record's seq for a key of the one-record-per-key layout.
func parseLogKey(k []byte) (first, last uint64) {
	switch len(k) {
	case 17:
		return binary.BigEndian.Uint64(k[1:9]), binary.BigEndian.Uint64(k[9:])
	case 9:
		seq := binary.BigEndian.Uint64(k[1:])
		return seq, seq
	}
	return 0, 0
}

// keyHeld keys an erasure record kept after the log page that held it was
// trimmed (Txn.TrimLog).
func keyHeld(seq uint64) []byte { return binary.BigEndian.AppendUint64(key(pHeld, 8), seq) }

// keyRefile marks an identifier whose filed events a quarantine still has
// to move (Txn.SetRefile).
func keyRefile(idkey string) []byte { return keyOf(pRefile, idkey) }

func keyCursor(sink string) []byte { return keyOf(pCursor, sink) }

func keyMeta(name string) []byte { return keyOf(pMeta, name) }

func keyErased(hash string) []byte { return keyOf(pErased, hash) }

func keyQuar(idkey string) []byte { return keyOf(pQuar, idkey) }

func keyCand(a, b string) []byte { return append(withLen(pCand, a, len(b)), b...) }

func keyAccount(id string) []byte { return keyOf(pAccount, id) }

func keyPurge(idkey string) []byte { return keyOf(pPurge, idkey) }
