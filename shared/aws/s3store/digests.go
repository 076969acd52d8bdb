package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// DigestsAPI is the part of the S3 client Digests uses.
type DigestsAPI interface {
	PutObject(ctx context.Context, params *awss3.PutObjectInput, optFns ...func(*awss3.Options)) (*awss3.PutObjectOutput, error)
	GetObject(ctx context.Context, params *awss3.GetObjectInput, optFns ...func(*awss3.Options)) (*awss3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, params *awss3.ListObjectsV2Input, optFns ...func(*awss3.Options)) (*awss3.ListObjectsV2Output, error)
}

var _ DigestsAPI = (*awss3.Client)(nil)

// ErrDigestExists is returned by Digests.Put for a name already written, and by
// Digests.PutPublicKey for a different key: digests are evidence, never replaced.
var ErrDigestExists = errors.New("digest already exists")

// Digest object names under the prefix.
const (
	digestExt    = ".json"
	signatureExt = ".sig"
	// PublicKeyName is the object, under the prefix, holding the PEM public key
	// that verifies the digests.
	PublicKeyName = "public-key.pem"
)

// Digests keeps the signed ledger digests in a bucket with Object Lock: each
// digest is <prefix><name>.json with its signature <prefix><name>.sig, next to
// the <prefix>public-key.pem that verifies them, all written once and locked
// in COMPLIANCE mode so that not even the account root can change or delete
// them before the retention ends.
type Digests struct {
	api       DigestsAPI
	bucket    string
	prefix    string
	retention time.Duration
	now       func() time.Time
}

// NewDigests returns the digests under prefix (e.g. "digests/") in bucket.
// With retention > 0 every object is locked (COMPLIANCE) until now+retention,
// whatever the bucket's default is; with 0 the bucket's default retention
// applies.
func NewDigests(api DigestsAPI, bucket, prefix string, retention time.Duration) *Digests {
	return &Digests{api: api, bucket: bucket, prefix: prefix, retention: retention, now: time.Now}
}

// Put writes a digest and its signature and returns the digest's s3://
// location. It refuses (ErrDigestExists) a name already written with other
// content. The signature goes first and the digest last: List names only
// digests, so a digest is never listed without its signature, and a Put cut
// short between the two is finished by trying again (an object already
// there with the same bytes counts as written).
func (d *Digests) Put(ctx context.Context, name string, digest, signature []byte) (string, error) {
	if err := validName(name); err != nil {
		return "", err
	}
	if len(digest) == 0 || len(signature) == 0 {
		return "", fmt.Errorf("put digest %s: empty digest or signature", name)
	}
	if err := d.putSame(ctx, d.prefix+name+signatureExt, "application/octet-stream", signature); err != nil {
		return "", fmt.Errorf("put signature of digest %s: %w", name, err)
	}
	key := d.prefix + name + digestExt
	if err := d.putSame(ctx, key, "application/json", digest); err != nil {
		return "", fmt.Errorf("put digest %s: %w", name, err)
	}
	return "s3://" + d.bucket + "/" + key, nil
}

// putSame writes key once: an existing object with the same bytes is
// success (a retry), with other bytes ErrDigestExists.
func (d *Digests) putSame(ctx context.Context, key, contentType string, data []byte) error {
	err := d.putOnce(ctx, key, contentType, data)
	if !errors.Is(err, ErrDigestExists) {
		return err
	}
	have, gerr := d.get(ctx, key)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if !bytes.Equal(have, data) {
		return err
	}
	return nil
}

// PutPublicKey writes the PEM public key that verifies the digests. It is
// written once: the same key again is fine (every run may call it), a
// different one is ErrDigestExists, since it would orphan the digests signed
// with the first.
func (d *Digests) PutPublicKey(ctx context.Context, pem []byte) error {
	key := d.prefix + PublicKeyName
	err := d.putOnce(ctx, key, "application/x-pem-file", pem)
	if !errors.Is(err, ErrDigestExists) {
		if err != nil {
			return fmt.Errorf("put public key: %w", err)
		}
		return nil
	}
	have, gerr := d.get(ctx, key)
	if gerr != nil {
		return fmt.Errorf("put public key: %w", gerr)
	}
	if !bytes.Equal(bytes.TrimSpace(have), bytes.TrimSpace(pem)) {
		return fmt.Errorf("put public key: s3://%s/%s holds a different key: %w", d.bucket, key, ErrDigestExists)
	}
	return nil
}

// PublicKey reads the PEM public key stored beside the digests; ok is false
// when there is none yet.
func (d *Digests) PublicKey(ctx context.Context) ([]byte, bool, error) {
	key := d.prefix + PublicKeyName
	out, err := d.api.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(key)})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get s3://%s/%s: %w", d.bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, false, fmt.Errorf("read s3://%s/%s: %w", d.bucket, key, err)
	}
	return data, true, nil
}

// List returns the names of the digests (without prefix and extension) in
// lexical order.
func (d *Digests) List(ctx context.Context) ([]string, error) {
	var names []string
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(d.bucket), Prefix: aws.String(d.prefix)}
	for {
		out, err := d.api.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list digests in s3://%s/%s: %w", d.bucket, d.prefix, err)
		}
		for _, o := range out.Contents {
			k := strings.TrimPrefix(aws.ToString(o.Key), d.prefix)
			if name, ok := strings.CutSuffix(k, digestExt); ok && name != "" {
				names = append(names, name)
			}
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextContinuationToken) == "" {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	sort.Strings(names)
	return names, nil
}

// Get reads a digest and its signature.
func (d *Digests) Get(ctx context.Context, name string) (digest, signature []byte, err error) {
	if err := validName(name); err != nil {
		return nil, nil, err
	}
	if digest, err = d.get(ctx, d.prefix+name+digestExt); err != nil {
		return nil, nil, fmt.Errorf("get digest %s: %w", name, err)
	}
	if signature, err = d.get(ctx, d.prefix+name+signatureExt); err != nil {
		return nil, nil, fmt.Errorf("get signature of digest %s: %w", name, err)
	}
	return digest, signature, nil
}

// putOnce writes key unless it exists (ErrDigestExists). Object Lock puts need
// a content checksum: SHA-256 is sent whatever the client's checksum setting.
func (d *Digests) putOnce(ctx context.Context, key, contentType string, data []byte) error {
	in := &awss3.PutObjectInput{
		Bucket: aws.String(d.bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String(contentType), ContentLength: aws.Int64(int64(len(data))),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
		ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
		IfNoneMatch:          aws.String("*"),
	}
	if d.retention > 0 {
		in.ObjectLockMode = types.ObjectLockModeCompliance
		in.ObjectLockRetainUntilDate = aws.Time(d.now().UTC().Add(d.retention))
	}
	if _, err := d.api.PutObject(ctx, in); err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
			return fmt.Errorf("s3://%s/%s: %w", d.bucket, key, ErrDigestExists)
		}
		return fmt.Errorf("put s3://%s/%s: %w", d.bucket, key, err)
	}
	return nil
}

func (d *Digests) get(ctx context.Context, key string) ([]byte, error) {
	out, err := d.api.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", d.bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", d.bucket, key, err)
	}
	return data, nil
}

// validName rejects the empty name, which List could not return.
func validName(name string) error {
	if name == "" {
		return errors.New("digest name is empty")
	}
	return nil
}
