// Package kmssign signs the ledger digests with an asymmetric KMS key, so that
// nobody holding only the functions' credentials can forge a digest offline and
// anybody holding only the public key can check one (openssl, no AWS account).
//
// The key is ECC_NIST_P256 / SIGN_VERIFY and the algorithm ECDSA_SHA_256 over the
// RAW message: KMS hashes the bytes itself, exactly as
//
//	openssl dgst -sha256 -verify public-key.pem -signature <name>.sig <name>.json
//
// does, and the signature is the ASN.1 DER that openssl and crypto/ecdsa.VerifyASN1 read.
package kmssign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// MaxMessage is the largest message KMS signs in RAW mode; a digest is a few
// hundred bytes, so a bigger one is a bug worth an early, clear error.
const MaxMessage = 4096

// algorithm is the only one the signer uses: the one openssl's
// `dgst -sha256 -verify` checks with an EC public key.
const algorithm = types.SigningAlgorithmSpecEcdsaSha256

// API is the part of the KMS client the signer uses.
type API interface {
	Sign(ctx context.Context, params *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, params *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

var _ API = (*kms.Client)(nil)

// Signer signs with one KMS key. It is safe for concurrent use.
type Signer struct {
	api   API
	keyID string

	mu  sync.Mutex
	pem []byte // the public key, once fetched: it never changes for a key id
}

// New returns a signer with the key keyID (key id, ARN or alias).
func New(api API, keyID string) *Signer { return &Signer{api: api, keyID: keyID} }

// KeyID is the key the signer uses, as given to New; digests record it so a
// verifier knows which public key to fetch.
func (s *Signer) KeyID() string { return s.keyID }

// Algorithm is the KMS name of the signing algorithm, ECDSA_SHA_256.
func (s *Signer) Algorithm() string { return string(algorithm) }

// Sign signs msg (the digest bytes themselves, not a hash) and returns the
// DER-encoded ECDSA signature as KMS returns it.
func (s *Signer) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	if len(msg) == 0 || len(msg) > MaxMessage {
		return nil, fmt.Errorf("kms sign with key %s: message of %d bytes, want 1 to %d", s.keyID, len(msg), MaxMessage)
	}
	out, err := s.api.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.keyID),
		Message:          msg,
		MessageType:      types.MessageTypeRaw,
		SigningAlgorithm: algorithm,
	})
	if err != nil {
		return nil, fmt.Errorf("kms sign with key %s: %w", s.keyID, err)
	}
	if len(out.Signature) == 0 {
		return nil, fmt.Errorf("kms sign with key %s: empty signature", s.keyID)
	}
	return out.Signature, nil
}

// PublicKeyPEM returns the key's public half as a PEM "PUBLIC KEY" block
// (SubjectPublicKeyInfo), the file a third party verifies digests with. It is
// fetched once and cached. It fails when the key cannot sign with
// ECDSA_SHA_256 or is not an EC key, so a misconfigured key is found at the
// first run rather than by the first verifier.
func (s *Signer) PublicKeyPEM(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pem != nil {
		return bytes.Clone(s.pem), nil
	}
	out, err := s.api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(s.keyID)})
	if err != nil {
		return nil, fmt.Errorf("kms get public key %s: %w", s.keyID, err)
	}
	if !slices.Contains(out.SigningAlgorithms, algorithm) {
		return nil, fmt.Errorf("kms get public key %s: key signs with %v, want %s", s.keyID, out.SigningAlgorithms, algorithm)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("kms get public key %s: parse: %w", s.keyID, err)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("kms get public key %s: %T, want an ECDSA key", s.keyID, pub)
	}
	s.pem = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: out.PublicKey})
	return bytes.Clone(s.pem), nil
}
