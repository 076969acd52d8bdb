package audit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// A digest is signed after each run, CloudTrail-style: it pins the ledger's
// length and head hash at that moment and names the previous digest's hash,
// so the digests form a chain of their own. Whoever can edit the ledger
// cannot also produce a digest for the edited chain without the signing key,
// and a third party checks a digest with the public key alone.

// Signature algorithms of digests.
const (
	// AlgEd25519 is the local key's: Ed25519 over the digest bytes.
	AlgEd25519 = "Ed25519"
	// AlgECDSASHA256 is the KMS key's (ECC_NIST_P256): ECDSA over the
	// SHA-256 of the digest bytes, signature in ASN.1 DER.
	AlgECDSASHA256 = "ECDSA_SHA_256"
)

// DigestVersion is the digest format's version.
const DigestVersion = 1

// Digest is what one signed digest states.
type Digest struct {
	Version int `json:"version"`
	// Number counts digests from 1.
	Number    uint64    `json:"number"`
	RunID     string    `json:"runId"`
	CreatedAt time.Time `json:"createdAt"`
	// LastSeq and HeadHash are the ledger's last entry when the digest was
	// made (0 and "" for an empty ledger).
	LastSeq  uint64 `json:"lastSeq"`
	HeadHash string `json:"headHash"`
	// RunChanges, AuditRows and Problems are the run's figures: changes it
	// recorded, rows on the audit sheet when verified, verification problems.
	RunChanges int `json:"runChanges"`
	AuditRows  int `json:"auditRows"`
	Problems   int `json:"problems"`
	// PreviousDigest is the hex SHA-256 of the previous digest's bytes ("" for
	// the first).
	PreviousDigest string `json:"previousDigest"`
	// Algorithm and KeyID say how and with which key the digest is signed.
	Algorithm string `json:"signingAlgorithm"`
	KeyID     string `json:"keyId"`
}

// Bytes is the digest as it is signed and stored: indented JSON with a final
// newline. The stored bytes are what is verified, never a re-encoding.
func (d Digest) Bytes() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode digest %d: %w", d.Number, err)
	}
	return append(b, '\n'), nil
}

// DigestName is the name a digest is stored under: its number, zero-padded so
// names sort in order, and its run.
func DigestName(number uint64, runID string) string {
	return fmt.Sprintf("%010d-%s", number, runID)
}

// HashBytes is the hex SHA-256 of b (a digest's bytes, for the next digest's
// PreviousDigest).
func HashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ParseDigest reads stored digest bytes.
func ParseDigest(b []byte) (Digest, error) {
	var d Digest
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("read digest: %w", err)
	}
	if d.Version != DigestVersion {
		return d, fmt.Errorf("read digest: version %d, want %d", d.Version, DigestVersion)
	}
	return d, nil
}

// VerifySignature checks sig over msg with a PEM public key ("PUBLIC KEY",
// PKIX): Ed25519 for AlgEd25519, ECDSA over SHA-256 for AlgECDSASHA256. It is
// all a third party needs besides the digest and the signature.
func VerifySignature(publicKeyPEM []byte, alg string, msg, sig []byte) error {
	block, _ := pem.Decode(publicKeyPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		return errors.New("verify signature: no PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("verify signature: public key: %w", err)
	}
	switch alg {
	case AlgEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("verify signature: %s needs an Ed25519 key, got %T", alg, pub)
		}
		if !ed25519.Verify(k, msg, sig) {
			return errors.New("verify signature: Ed25519 signature does not match")
		}
	case AlgECDSASHA256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("verify signature: %s needs an ECDSA key, got %T", alg, pub)
		}
		sum := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			return errors.New("verify signature: ECDSA signature does not match")
		}
	default:
		return fmt.Errorf("verify signature: unknown algorithm %q", alg)
	}
	return nil
}

// KeyFingerprint is a public key's short id: the first 16 hex characters of
// the SHA-256 of its PKIX DER.
func KeyFingerprint(publicKeyPEM []byte) (string, error) {
	block, _ := pem.Decode(publicKeyPEM)
	if block == nil {
		return "", errors.New("key fingerprint: no PEM block")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:8]), nil
}

// DigestCheck checks a sequence of stored digests, in order, against the
// ledger: each signature, each link to the previous digest, and that the
// ledger still holds the head each one pins.
type DigestCheck struct {
	// PublicKey verifies the signatures.
	PublicKey []byte
	// HashAt returns the hash of ledger entry seq, ok=false if there is none.
	HashAt func(seq uint64) (hash string, ok bool, err error)

	prevHash string // HashBytes of the previous digest's bytes
	count    int
	last     Digest
	started  bool
}

// StartAfter makes the check begin after a digest already checked: the next
// digest must name prevHash (that digest's HashBytes) and follow number.
func (c *DigestCheck) StartAfter(number uint64, prevHash string) {
	c.prevHash, c.last, c.started = prevHash, Digest{Number: number}, true
}

// Add checks one digest (its stored bytes and signature) and returns the
// problems found.
func (c *DigestCheck) Add(name string, data, sig []byte) ([]Problem, error) {
	var ps []Problem
	add := func(kind ProblemKind, detail string) {
		ps = append(ps, Problem{Kind: kind, Detail: fmt.Sprintf("digest %s: %s", name, detail)})
	}
	d, err := ParseDigest(data)
	if err != nil {
		add(ProblemDigestSignature, err.Error())
		c.prevHash = HashBytes(data)
		return ps, nil
	}
	if err := VerifySignature(c.PublicKey, d.Algorithm, data, sig); err != nil {
		add(ProblemDigestSignature, err.Error())
	}
	wantPrev := ""
	if c.started {
		wantPrev = c.prevHash
	}
	if d.PreviousDigest != wantPrev {
		add(ProblemDigestChain, fmt.Sprintf("names previous digest %s, but the digest before it hashes to %s", ShortSeal(d.PreviousDigest), ShortSeal(wantPrev)))
	}
	if c.started && d.Number != c.last.Number+1 {
		add(ProblemDigestChain, fmt.Sprintf("is number %d after number %d", d.Number, c.last.Number))
	}
	if d.LastSeq > 0 && c.HashAt != nil {
		h, ok, err := c.HashAt(d.LastSeq)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok:
			add(ProblemDigestMismatch, fmt.Sprintf("pins ledger entry %d, which the ledger no longer has (truncated)", d.LastSeq))
		case h != d.HeadHash:
			add(ProblemDigestMismatch, fmt.Sprintf("pins ledger entry %d with hash %s, the ledger has %s (re-sealed)", d.LastSeq, ShortSeal(d.HeadHash), ShortSeal(h)))
		}
	}
	c.prevHash, c.last, c.started = HashBytes(data), d, true
	c.count++
	return ps, nil
}

// Count is the number of digests checked.
func (c *DigestCheck) Count() int { return c.count }

// Last is the last digest checked and the hash of its bytes (zero before
// any).
func (c *DigestCheck) Last() (Digest, string) { return c.last, c.prevHash }
