// Package digestfile is the local run's digest signing: an Ed25519 key in a
// file under STATE_DIR (created by `billing-audit setup`) and the signed
// digests as files under OUTPUT_DIR/digests, beside the public key that
// verifies them. In AWS the same roles are played by a KMS key and an S3
// bucket with Object Lock.
package digestfile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// KeyFile is the private key's file name inside STATE_DIR.
const KeyFile = "digest-signing-key.pem"

// PublicKeyFile is the public key's file name beside the digests.
const PublicKeyFile = "public-key.pem"

// ErrNoKey says the signing key has not been created (run setup).
var ErrNoKey = errors.New("no digest signing key: run `billing-audit setup` to create one")

// Signer signs with an Ed25519 private key.
type Signer struct {
	priv  ed25519.PrivateKey
	pem   []byte
	keyID string
}

// CreateKey creates the signing key in dir (mode 0600) unless one is there,
// and says whether it created it.
func CreateKey(dir string) (created bool, err error) {
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("create digest key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return false, fmt.Errorf("create digest key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return false, fmt.Errorf("create digest key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// O_EXCL: two setups at once cannot overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create digest key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, fmt.Errorf("create digest key: %w", err)
	}
	return true, f.Close()
}

// Open reads the signing key from dir; ErrNoKey when there is none.
func Open(dir string) (*Signer, error) {
	data, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("read digest key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read digest key %s: no PEM PRIVATE KEY block", filepath.Join(dir, KeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read digest key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read digest key: %T is not an Ed25519 key", k)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	id, err := audit.KeyFingerprint(pub)
	if err != nil {
		return nil, err
	}
	return &Signer{priv: priv, pem: pub, keyID: id}, nil
}

// Sign signs msg (Ed25519 signs the message itself, no pre-hash).
func (s *Signer) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

// Algorithm is audit.AlgEd25519.
func (s *Signer) Algorithm() string { return audit.AlgEd25519 }

// KeyID is the public key's fingerprint (audit.KeyFingerprint).
func (s *Signer) KeyID() string { return s.keyID }

// PublicKeyPEM is the public key, PEM "PUBLIC KEY" (PKIX).
func (s *Signer) PublicKeyPEM(context.Context) ([]byte, error) { return slices.Clone(s.pem), nil }

// Dir keeps signed digests as files: <name>.json (the signed bytes) and
// <name>.sig (the raw signature), plus public-key.pem.
type Dir string

// Put writes a digest and its signature; a name already written with other
// content is refused. The signature goes first: List names only digests, so
// a digest is never listed without its signature, and a Put cut short is
// finished by trying again (a file with the same bytes counts as written).
func (d Dir) Put(_ context.Context, name string, digest, signature []byte) (string, error) {
	if err := os.MkdirAll(string(d), 0o750); err != nil {
		return "", fmt.Errorf("store digest %s: %w", name, err)
	}
	if err := writeSame(filepath.Join(string(d), name+".sig"), signature); err != nil {
		return "", fmt.Errorf("store digest %s: %w", name, err)
	}
	path := filepath.Join(string(d), name+".json")
	if err := writeSame(path, digest); err != nil {
		return "", fmt.Errorf("store digest %s: %w", name, err)
	}
	return path, nil
}

// writeSame creates path with data, or finds it already holding data.
func writeSame(path string, data []byte) error {
	err := writeNew(path, data)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if have, rerr := os.ReadFile(path); rerr == nil && bytes.Equal(have, data) {
		return nil
	}
	return fmt.Errorf("%s exists with other content: a digest is never overwritten", path)
}

// List returns the digests' names in order (names sort by digest number).
func (d Dir) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list digests: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Get reads a digest and its signature (a missing signature reads as empty,
// which then fails verification rather than hiding the digest).
func (d Dir) Get(_ context.Context, name string) ([]byte, []byte, error) {
	data, err := os.ReadFile(filepath.Join(string(d), name+".json"))
	if err != nil {
		return nil, nil, fmt.Errorf("read digest %s: %w", name, err)
	}
	sig, err := os.ReadFile(filepath.Join(string(d), name+".sig"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read digest %s: %w", name, err)
	}
	return data, sig, nil
}

// PublicKey reads public-key.pem beside the digests; ok is false when there
// is none.
func (d Dir) PublicKey(context.Context) ([]byte, bool, error) {
	data, err := os.ReadFile(filepath.Join(string(d), PublicKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read public key: %w", err)
	}
	return data, true, nil
}

// PutPublicKey writes public-key.pem beside the digests, once; a different
// key later is refused (a new key needs a new digest folder).
func (d Dir) PutPublicKey(_ context.Context, pemData []byte) error {
	path := filepath.Join(string(d), PublicKeyFile)
	have, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(have, pemData):
		return nil
	case err == nil:
		return fmt.Errorf("store public key: %s holds another key", path)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store public key: %w", err)
	}
	if err := os.MkdirAll(string(d), 0o750); err != nil {
		return fmt.Errorf("store public key: %w", err)
	}
	if err := writeNew(path, pemData); err != nil {
		return fmt.Errorf("store public key: %w", err)
	}
	return nil
}

// writeNew creates path with data, read-only; an existing file is
// fs.ErrExist. The data goes to a temporary file, synced, then linked into
// place: a crash never leaves a partial digest under the name. Where the
// file system has no hard links (some network and FAT-style mounts), the
// file is created exclusively and written in place instead; a crash there
// can leave a partial file, which the next Put refuses to overwrite and
// names. The folder is synced after, so the new name survives a crash too.
func writeNew(path string, data []byte) error {
	err := linkNew(path, data)
	if err == nil || errors.Is(err, fs.ErrExist) || !errors.Is(err, errNoLink) {
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A partial file would stand for the digest: remove it (only a
		// crash leaves one, which the next Put names).
		return errors.Join(err, os.Remove(path))
	}
	return syncDir(filepath.Dir(path))
}

// link is os.Link; tests replace it to play a file system without links.
var link = os.Link

// errNoLink says the file system refused a hard link for a reason other
// than an existing name.
var errNoLink = errors.New("hard links not supported")

// syncDir syncs a folder, so the names created in it are durable. A file
// system that cannot sync a folder (EINVAL on some) is left as it is.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// linkNew writes data to a synced temporary file and links it to path.
func linkNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o444); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	err = link(tmp.Name(), path)
	if err != nil && !errors.Is(err, fs.ErrExist) && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, errors.ErrUnsupported)) {
		return fmt.Errorf("%w: %w", errNoLink, err)
	}
	return err
}
