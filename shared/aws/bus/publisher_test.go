package bus_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/aws/bus"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// TestRunCompletedReachesReportQueue publishes through the adapter on the
// bus of template.yaml; its rule must deliver the event to the report queue.
func TestRunCompletedReachesReportQueue(t *testing.T) {
	endpoint := localstacktest.StartMoto(t)
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	st, err := localstack.DeployFile(ctx, endpoint, "us-east-1", filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml"),
		localstack.Options{StackName: "events", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.New(awseb.NewFromConfig(cfg), st.Env["EVENT_BUS_NAME"])
	want := pipeline.RunCompleted{RunID: "20261125T150000Z-abc123", Batches: 4, ForceReport: true,
		StartedAt: time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), FinishedAt: time.Date(2026, 11, 25, 15, 1, 0, 0, time.UTC)}
	if err := pub.RunCompleted(ctx, want); err != nil {
		t.Fatal(err)
	}
	sqsc := awssqs.NewFromConfig(cfg)
	url := st.QueueURLs["ReportQueue"]
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		out, err := sqsc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var ev struct {
				Source     string                `json:"source"`
				DetailType string                `json:"detail-type"`
				Detail     pipeline.RunCompleted `json:"detail"`
			}
			if err := json.Unmarshal([]byte(*m.Body), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Source != bus.Source || ev.DetailType != bus.DetailTypeRunCompleted || ev.Detail.RunID != want.RunID ||
				!ev.Detail.ForceReport || ev.Detail.Batches != 4 || !ev.Detail.StartedAt.Equal(want.StartedAt) {
				t.Errorf("report queue got %+v, want %+v", ev, want)
			}
			return
		}
	}
	t.Fatal("no AuditRunCompleted reached the report queue")
}
