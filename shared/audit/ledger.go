package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The ledger is the audit log of record: every row the product writes to the
// audit-log sheet is first appended to it as an entry that carries a sequence
// number, the previous entry's hash and its own SHA-256 over a canonical
// encoding of everything the row holds. Changing, removing, inserting or
// reordering an entry breaks the chain from there on; re-computing the chain
// after such an edit changes the head hash, which the signed digests pin.
// The audit sheet is compared with the ledger row by row (see [CompareRow]).

// EntryType says what a ledger entry records.
type EntryType string

// EntryChange records a detected change and its audit-log row.
const EntryChange EntryType = "change"

// LedgerVersion names the canonical encoding of entries (see
// [LedgerEntry.Canonical]); it is hashed with every entry.
const LedgerVersion = "billing-audit-ledger/v1"

// GenesisHash is the Prev of the first entry: 64 zeros.
var GenesisHash = strings.Repeat("0", 64)

// SealLength is how many hex characters of an entry's hash the audit-log row
// shows as its Seal: 64 bits, enough for a person to match row and entry
// (the check itself compares every field).
const SealLength = 16

// LedgerEntry is one entry of the ledger.
type LedgerEntry struct {
	// Seq numbers entries from 1 without gaps.
	Seq uint64 `json:"seq"`
	// Prev is the Hash of entry Seq-1 ([GenesisHash] for the first).
	Prev string    `json:"prev"`
	Type EntryType `json:"type"`
	// Subject is what the entry is about: the Change ID of a change entry.
	Subject string `json:"subject"`
	// SealedAt is when the entry was appended.
	SealedAt time.Time `json:"sealedAt"`
	// Fields are the audit-log row's fields (see [LogFields]).
	Fields []Field `json:"fields"`
	// Hash is the hex SHA-256 of Canonical().
	Hash string `json:"hash"`
}

// Seal is the short form of the entry's hash shown on its audit-log row.
func (e LedgerEntry) Seal() string { return ShortSeal(e.Hash) }

// ShortSeal is the first SealLength characters of a hash.
func ShortSeal(hash string) string {
	if len(hash) < SealLength {
		return hash
	}
	return hash[:SealLength]
}

// Canonical is the byte string an entry's hash is computed over. Every part
// is length-prefixed ("<len>:<bytes>\n"), so no two different entries encode
// alike whatever their text holds:
//
//	billing-audit-ledger/v1
//	seq, prev, type, subject, sealedAt (RFC 3339, nanoseconds, UTC),
//	the number of fields, then per field: title, kind, value, link.
//
// A third party holding the entries can recompute every hash and the chain
// with this description alone.
func (e LedgerEntry) Canonical() []byte {
	var b strings.Builder
	b.Grow(256 + 64*len(e.Fields))
	put := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
		b.WriteByte('\n')
	}
	put(LedgerVersion)
	put(strconv.FormatUint(e.Seq, 10))
	put(e.Prev)
	put(string(e.Type))
	put(e.Subject)
	put(e.SealedAt.UTC().Format(time.RFC3339Nano))
	put(strconv.Itoa(len(e.Fields)))
	for _, f := range e.Fields {
		put(f.Title)
		put(string(f.Kind))
		put(f.Value)
		put(f.Link)
	}
	return []byte(b.String())
}

// ComputeHash is the hex SHA-256 of the entry's canonical encoding.
func (e LedgerEntry) ComputeHash() string {
	sum := sha256.Sum256(e.Canonical())
	return hex.EncodeToString(sum[:])
}

// NextEntry builds the entry that follows head (zero head: the first entry)
// and computes its hash.
func NextEntry(head LedgerEntry, typ EntryType, subject string, at time.Time, fields []Field) LedgerEntry {
	e := LedgerEntry{Seq: head.Seq + 1, Prev: head.Hash, Type: typ, Subject: subject, SealedAt: at.UTC(), Fields: fields}
	if head.Seq == 0 {
		e.Prev = GenesisHash
	}
	e.Hash = e.ComputeHash()
	return e
}

// ChainCheck walks a ledger in sequence order and reports where it breaks.
// Feed it every entry with Add; it keeps only the last one, so a ledger of
// any length is checked in constant memory.
type ChainCheck struct {
	last    LedgerEntry
	n       uint64
	started bool
}

// Add checks e against the entry before it: its sequence number follows,
// its Prev is that entry's hash, and its own hash recomputes. It returns the
// problems found (none for a sound entry).
func (c *ChainCheck) Add(e LedgerEntry) []Problem {
	var ps []Problem
	at := func(kind ProblemKind, detail string) {
		ps = append(ps, Problem{Kind: kind, Seq: e.Seq, ChangeID: e.Subject, WorkRequest: FieldValue(e.Fields, LogWorkRequest), Detail: detail})
	}
	wantSeq, wantPrev := c.last.Seq+1, c.last.Hash
	if !c.started {
		wantSeq, wantPrev = 1, GenesisHash
	}
	if e.Seq != wantSeq {
		at(ProblemOutOfOrder, fmt.Sprintf("entry %d follows entry %d: entries are missing, repeated or out of order", e.Seq, c.last.Seq))
	}
	if e.Prev != wantPrev {
		at(ProblemBrokenChain, fmt.Sprintf("entry %d names previous hash %s, but the entry before it hashes to %s: an entry before it was changed, removed or re-sealed",
			e.Seq, ShortSeal(e.Prev), ShortSeal(wantPrev)))
	}
	if h := e.ComputeHash(); h != e.Hash {
		at(ProblemAlteredEntry, fmt.Sprintf("entry %d's content hashes to %s, not to its recorded hash %s: it was changed after it was sealed",
			e.Seq, ShortSeal(h), ShortSeal(e.Hash)))
	}
	c.last, c.started = e, true
	c.n++
	return ps
}

// Head is the last entry added (zero before any).
func (c *ChainCheck) Head() LedgerEntry { return c.last }

// Count is the number of entries added.
func (c *ChainCheck) Count() uint64 { return c.n }
