package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// PutRun saves a run record (replacing one with the same id).
func (s *Store) PutRun(ctx context.Context, r pipeline.RunRecord) error {
	it := dataItem{PK: runPK(r.RunID), SK: skRun, GSI1PK: gsiRuns, GSI1SK: sortTime(r.StartedAt) + "#" + r.RunID}
	if err := s.putData(ctx, it, r); err != nil {
		return fmt.Errorf("save run %s: %w", r.RunID, err)
	}
	return nil
}

// Run returns one run record by id.
func (s *Store) Run(ctx context.Context, runID string) (pipeline.RunRecord, bool, error) {
	var r pipeline.RunRecord
	ok, err := s.getData(ctx, runPK(runID), skRun, &r)
	if err != nil {
		return pipeline.RunRecord{}, false, fmt.Errorf("read run %s: %w", runID, err)
	}
	return r, ok, nil
}

// Runs returns the newest runs first, at most limit (0: all).
func (s *Store) Runs(ctx context.Context, limit int) ([]pipeline.RunRecord, error) {
	in := s.indexQuery(gsiRuns)
	in.ScanIndexForward = aws.Bool(false)
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	var out []pipeline.RunRecord
	errEnough := errors.New("enough")
	err := s.query(ctx, in, func(item map[string]types.AttributeValue) error {
		if limit > 0 && len(out) >= limit {
			return errEnough
		}
		var it dataItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return err
		}
		var r pipeline.RunRecord
		if err := json.Unmarshal([]byte(it.Data), &r); err != nil {
			return fmt.Errorf("run item %s: %w", it.PK, err)
		}
		out = append(out, r)
		if limit > 0 && len(out) >= limit {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}
