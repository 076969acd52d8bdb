package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Blobs keeps payloads too big for a queue message (S3 in the cloud).
type Blobs interface {
	Put(ctx context.Context, key, contentType string, data []byte) (string, error)
	Get(ctx context.Context, key string) ([]byte, error)
}

// MaxInlineBatch is the largest batch sent inside a queue message; SQS takes
// 256 KiB, and the rest is headroom for attributes and encoding.
const MaxInlineBatch = 200 << 10

// envelope is a queue message: the batch itself, or where it was put.
type envelope struct {
	Batch   *Batch `json:"batch,omitempty"`
	BlobKey string `json:"blobKey,omitempty"`
	BatchID string `json:"batchId,omitempty"`
}

// EncodeBatch makes the queue message for a batch, putting the batch in
// blobs under batches/<batch id>.json when it is larger than maxInline.
func EncodeBatch(ctx context.Context, b Batch, blobs Blobs, maxInline int) ([]byte, error) {
	data, err := json.Marshal(envelope{Batch: &b})
	if err != nil {
		return nil, fmt.Errorf("encode batch %s: %w", b.ID, err)
	}
	if len(data) <= maxInline {
		return data, nil
	}
	if blobs == nil {
		return nil, fmt.Errorf("batch %s is %d bytes, over %d, and no blob store is configured", b.ID, len(data), maxInline)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode batch %s: %w", b.ID, err)
	}
	key := "batches/" + b.ID + ".json"
	if _, err := blobs.Put(ctx, key, "application/json", raw); err != nil {
		return nil, fmt.Errorf("put batch %s in blob %s: %w", b.ID, key, err)
	}
	return json.Marshal(envelope{BlobKey: key, BatchID: b.ID})
}

// DecodeBatch reads a queue message back into its batch.
func DecodeBatch(ctx context.Context, body []byte, blobs Blobs) (Batch, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Batch{}, fmt.Errorf("decode batch message: %w", err)
	}
	switch {
	case env.Batch != nil:
		return *env.Batch, nil
	case env.BlobKey != "":
		if blobs == nil {
			return Batch{}, errors.New("batch message points to a blob but no blob store is configured")
		}
		raw, err := blobs.Get(ctx, env.BlobKey)
		if err != nil {
			return Batch{}, fmt.Errorf("read batch %s from blob %s: %w", env.BatchID, env.BlobKey, err)
		}
		var b Batch
		if err := json.Unmarshal(raw, &b); err != nil {
			return Batch{}, fmt.Errorf("decode batch %s: %w", env.BlobKey, err)
		}
		return b, nil
	default:
		return Batch{}, errors.New("batch message holds neither a batch nor a blob key")
	}
}
