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

// The entry types.
const (
	// EntryChange records a detected change and its audit-log row.
	EntryChange EntryType = "change"
	// EntryAdopted records an audit-log row written before the ledger
	// existed (an earlier version), sealed as it stood when the ledger was
	// created. Its row has no Seal.
	EntryAdopted EntryType = "adopted"
	// EntryAdoption closes the adoption: every row of the audit sheet as
	// the ledger found it is sealed before it, as an EntryAdopted entry. It
	// is written once, before any change entry, even for an empty sheet:
	// verification compares the audit sheet only once the ledger holds it,
	// and a store flag an intruder could clear decides nothing. Its fields
	// count what was adopted. It has no audit-log row.
	EntryAdoption EntryType = "adoption"
	// EntryDisposition records a change of an exception's review columns
	// (Reviewer, Disposition, Resolution Note) as a run found it on the
	// audit sheet: the new values, and who saved the row and when. Its
	// subject is the exception's Change ID; it has no audit-log row. The
	// review itself is audited this way.
	EntryDisposition EntryType = "disposition"
	// EntryUnreadable stands, when reading the ledger, for an entry the
	// store holds but that cannot be decoded: its bytes were edited. It is
	// never written; verification names it (see [UnreadableEntry]).
	EntryUnreadable EntryType = "unreadable"
)

// UnreadableEntry is what a store returns, in its place, for the entry at seq
// that it cannot decode: verification then names an altered entry instead of
// failing, and reads on.
func UnreadableEntry(seq uint64, err error) LedgerEntry {
	return LedgerEntry{Seq: seq, Type: EntryUnreadable, Fields: []Field{{Title: "Error", Kind: FieldText, Value: err.Error()}}}
}

// AdoptionSubject is the Subject of the EntryAdoption entry.
const AdoptionSubject = "ledger-adoption"

// HasSeal reports whether the entry's row carries a Seal.
func (e LedgerEntry) HasSeal() bool { return e.Type != EntryAdopted }

// HasRow reports whether the entry stands for a row of the audit sheet.
func (e LedgerEntry) HasRow() bool { return e.Type == EntryChange || e.Type == EntryAdopted }

// LedgerVersion names the canonical encoding of entries (see
// [LedgerEntry.Canonical]); it is hashed with every entry.
const LedgerVersion = "billing-audit-ledger/v1"

// GenesisHash is the Prev of the first entry: 64 zeros.
var GenesisHash = strings.Repeat("0", 64)

// SealLength is how many hex characters of an entry's hash the audit-log row
// shows in its Seal: 64 bits, enough for a person to match row and entry
// (the check itself compares every field).
const SealLength = 16

// SealPrefix starts every Seal, so a seal is never all digits: Smartsheet
// would keep one as a number and lose its leading zeros.
const SealPrefix = "S"

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

// Seal is what the entry's audit-log row shows in its Seal column:
// SealPrefix and the first SealLength characters of the hash.
func (e LedgerEntry) Seal() string { return SealPrefix + ShortSeal(e.Hash) }

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
	n := 128 + len(e.Prev) + len(e.Subject)
	for _, f := range e.Fields {
		n += 32 + len(f.Title) + len(f.Kind) + len(f.Value) + len(f.Link)
	}
	b := make([]byte, 0, n)
	put := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
		b = append(b, '\n')
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
	return b
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
	if e.Type == EntryUnreadable {
		at(ProblemAlteredEntry, fmt.Sprintf("entry %d cannot be read (%s): it was changed after it was sealed", e.Seq, FieldValue(e.Fields, "Error")))
		c.last, c.started = e, true
		c.n++
		return ps
	}
	if c.last.Type == EntryUnreadable && c.started {
		wantPrev = e.Prev // the entry before cannot be read: its hash is unknown
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

// EncodeEntry is an entry as the stores keep it: its canonical encoding
// followed by its hash, length-prefixed the same way. What is stored is what
// was hashed, and reading it back is a scan of length prefixes, not a JSON
// parse (a ledger of 100,000 entries is read in a fraction of a second).
func EncodeEntry(e LedgerEntry) []byte {
	c := e.Canonical()
	out := make([]byte, 0, len(c)+len(e.Hash)+8)
	out = append(out, c...)
	out = strconv.AppendInt(out, int64(len(e.Hash)), 10)
	out = append(out, ':')
	out = append(out, e.Hash...)
	return append(out, '\n')
}

// DecodeEntry reads an entry written by EncodeEntry.
func DecodeEntry(b []byte) (LedgerEntry, error) {
	var e LedgerEntry
	p := entryParser{b: b}
	if v := p.next(); v != LedgerVersion {
		return e, fmt.Errorf("ledger entry: version %q, want %q", v, LedgerVersion)
	}
	seq, err := strconv.ParseUint(p.next(), 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("seq: %w", err)
	}
	e.Seq = seq
	e.Prev = p.next()
	e.Type = EntryType(p.next())
	e.Subject = p.next()
	if at := p.next(); p.err == nil {
		if e.SealedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			p.err = fmt.Errorf("sealedAt: %w", err)
		}
	}
	n, err := strconv.Atoi(p.next())
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("field count: %w", err)
	}
	if p.err == nil && (n < 0 || n > len(b)/8) {
		p.err = fmt.Errorf("field count %d", n)
	}
	if p.err == nil {
		e.Fields = make([]Field, n)
		for i := range e.Fields {
			e.Fields[i] = Field{Title: p.next(), Kind: FieldKind(p.next()), Value: p.next(), Link: p.next()}
		}
	}
	e.Hash = p.next()
	if p.err == nil && p.off != len(b) {
		p.err = fmt.Errorf("%d bytes after the hash", len(b)-p.off)
	}
	if p.err != nil {
		return LedgerEntry{}, fmt.Errorf("ledger entry %d: %w", e.Seq, p.err)
	}
	return e, nil
}

// entryParser reads "<len>:<bytes>\n" parts.
type entryParser struct {
	b   []byte
	off int
	err error
}

func (p *entryParser) next() string {
	if p.err != nil {
		return ""
	}
	colon := -1
	for i := p.off; i < len(p.b) && i < p.off+20; i++ {
		if p.b[i] == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		p.err = fmt.Errorf("no length prefix at byte %d", p.off)
		return ""
	}
	n, err := strconv.Atoi(string(p.b[p.off:colon]))
	end := colon + 1 + n
	if err != nil || n < 0 || end >= len(p.b) || p.b[end] != '\n' {
		p.err = fmt.Errorf("bad part at byte %d", p.off)
		return ""
	}
	s := string(p.b[colon+1 : end])
	p.off = end + 1
	return s
}
