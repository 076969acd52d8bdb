// Package s3store keeps blobs in S3 buckets: batch payloads too big for SQS, the
// audit workbooks, and the signed ledger digests (Digests, in a bucket with
// Object Lock).
package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// API is the part of the S3 client used here.
type API interface {
	PutObject(ctx context.Context, in *awss3.PutObjectInput, optFns ...func(*awss3.Options)) (*awss3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *awss3.GetObjectInput, optFns ...func(*awss3.Options)) (*awss3.GetObjectOutput, error)
}

// Blobs stores objects in one bucket, encrypted at rest.
type Blobs struct {
	api    API
	bucket string
}

// New returns blobs in bucket.
func New(api API, bucket string) *Blobs { return &Blobs{api: api, bucket: bucket} }

// Put stores data under key and returns its s3:// location.
func (b *Blobs) Put(ctx context.Context, key, contentType string, data []byte) (string, error) {
	_, err := b.api.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String(contentType), ContentLength: aws.Int64(int64(len(data))),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	})
	if err != nil {
		return "", fmt.Errorf("put s3://%s/%s: %w", b.bucket, key, err)
	}
	return "s3://" + b.bucket + "/" + key, nil
}

// Get reads the object at key.
func (b *Blobs) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := b.api.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", b.bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", b.bucket, key, err)
	}
	return data, nil
}

// Reports keeps workbooks under a key prefix; it is the Lambdas' report sink.
type Reports struct {
	Blobs  *Blobs
	Prefix string // e.g. "reports/"
}

// Put stores a workbook and returns its s3:// location.
func (r Reports) Put(ctx context.Context, name string, data []byte) (string, error) {
	return r.Blobs.Put(ctx, r.Prefix+name, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", data)
}
