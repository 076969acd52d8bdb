package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

const templateFile = "../../../template.yaml"

// MustPlan parses and prepares the real template.
func MustPlan(tb testing.TB) *Plan {
	tb.Helper()
	plan, err := Prepare(mustTemplate(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return plan
}

func TestParseTemplateShortForms(t *testing.T) {
	src := []byte(`
A: !Ref Foo
B: !GetAtt Queue.Arn
C: !Sub "${Bucket.Arn}/*"
D: !If [IsProd, INFO, DEBUG]
E: !Not [!Equals [!Ref X, ""]]
F: 512
G: true
H: "2012-10-17"
`)
	got, err := ParseTemplate(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Template{
		"A": map[string]any{"Ref": "Foo"},
		"B": map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}},
		"C": map[string]any{"Fn::Sub": "${Bucket.Arn}/*"},
		"D": map[string]any{"Fn::If": []any{"IsProd", "INFO", "DEBUG"}},
		"E": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "X"}, ""}}}},
		"F": 512,
		"G": true,
		"H": "2012-10-17",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseTemplate() mismatch (-want +got):\n%s", diff)
	}
}

func TestPrepareRealTemplate(t *testing.T) {
	plan := MustPlan(t)
	var body map[string]any
	if err := json.Unmarshal([]byte(plan.Body), &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Transform", "Globals"} {
		if _, ok := body[k]; ok {
			t.Errorf("Prepare() kept %s", k)
		}
	}
	for _, tc := range []struct {
		id   string
		want Disposition
	}{
		{"AuditTable", InStack}, {"AnalysisQueue", InStack}, {"ReportQueue", InStack}, {"WebhookQueue", InStack},
		{"AnalysisDLQ", InStack}, {"AuditBus", InStack}, {"RunCompletedRule", InStack}, {"ReportBucket", InStack},
		{"SmartsheetTokenSecret", Applied}, {"WebhookSecretsSecret", Applied}, {"ReportQueuePolicy", Applied},
		{"ReportBucketPolicy", Removed},
		{"DigestKey", Applied}, {"DigestBucket", InStack}, {"DigestBucketPolicy", Removed},
		{"ScanFunction", Removed}, {"AnalyzeFunction", Removed}, {"ReportFunction", Removed},
		{"WebhookFunction", Removed}, {"WebhookApi", Removed},
		{"AlertTopic", InStack}, {"AlertWebhooksSecret", Applied},
		{"AlarmKey", InStack}, {"AlarmTopic", InStack}, // a symmetric key: moto's CloudFormation makes it right
	} {
		if got := plan.Disposition[tc.id]; got != tc.want {
			t.Errorf("Prepare().Disposition[%s] = %v, want %v", tc.id, got, tc.want)
		}
	}
	if strings.Contains(plan.Body, "AWS::Serverless") {
		t.Error("Prepare() body still has AWS::Serverless resources")
	}
	wantEnv := []string{"ALERT_DIGEST_OVER", "ALERT_MIN_RISK", "ALERT_TOPIC_ARN", "ALERT_WEBHOOKS_SECRET_ARN", "ANALYSIS_QUEUE_URL", "AUDIT_SHEET_ID", "AUDIT_TABLE", "AUDIT_TIMEZONE",
		"DIGEST_BUCKET", "DIGEST_KEY_ID", "DIGEST_RETENTION_DAYS", "EVENT_BUS_NAME", "GRACE_PERIOD", "HIGH_RISK_THRESHOLD", "LOG_LEVEL", "MEDIUM_RISK_THRESHOLD", "REPORT_BUCKET", "RETENTION_DAYS", "SKIP_CELL_HISTORY",
		"SKIP_WRITER_INFO", "SMARTSHEET_BASE_URL", "SMARTSHEET_TOKEN_SECRET_ARN", "SOURCE_FOLDER_IDS", "SOURCE_SHEET_IDS", "TRACK_COLUMNS",
		"WEBHOOK_QUEUE_URL", "WEBHOOK_SECRETS_ARN"}
	if diff := cmp.Diff(wantEnv, sortedKeys(plan.Environment)); diff != "" {
		t.Errorf("template Globals environment mismatch (-want +got):\n%s", diff)
	}
}

func TestSnake(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"AnalysisQueue", "ANALYSIS_QUEUE"}, {"AnalysisDLQ", "ANALYSIS_DLQ"}, {"ReportQueue", "REPORT_QUEUE"},
	} {
		if got := snake(tc.in); got != tc.want {
			t.Errorf("snake(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDeployToMoto deploys the real template.yaml into a moto it starts, checks that every resource the functions
// use exists with the template's settings, and that the EventBridge rule delivers AuditRunCompleted to ReportQueue.
func TestDeployToMoto(t *testing.T) {
	endpoint := startMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients, err := NewClients(ctx, endpoint, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	plan := MustPlan(t)
	start := time.Now()
	st, err := Deploy(ctx, clients, plan, Options{
		StackName: "billing-audit-test",
		Parameters: map[string]string{"Stage": "dev", "SourceSheetIds": "111,222", "AuditTimezone": "America/Chicago",
			"DigestRetentionDays": "30", "AlarmEmail": "alarms@example.com"},
		SecretValues: map[string]string{"SmartsheetTokenSecret": "local-token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deployed in %s:\n%s", time.Since(start).Round(time.Millisecond), Describe(st))

	envPath := filepath.Join(t.TempDir(), "stack.env")
	if err := WriteEnvFile(envPath, st, endpoint, "us-east-1"); err != nil {
		t.Fatal(err)
	}
	env := readEnv(t, envPath)
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
		"SOURCE_SHEET_IDS": "111,222", "AUDIT_TIMEZONE": "America/Chicago", "LOG_LEVEL": "DEBUG",
		"EVENT_BUS_NAME": "billing-audit-test-bus", "RETENTION_DAYS": "400", "DIGEST_RETENTION_DAYS": "30",
	} {
		if env[k] != want {
			t.Errorf("stack.env %s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"AUDIT_TABLE", "ANALYSIS_QUEUE_URL", "WEBHOOK_QUEUE_URL", "REPORT_QUEUE_URL",
		"REPORT_BUCKET", "SMARTSHEET_TOKEN_SECRET_ARN", "WEBHOOK_SECRETS_ARN", "DIGEST_KEY_ID", "DIGEST_BUCKET"} {
		if env[k] == "" {
			t.Errorf("stack.env has no %s", k)
		}
	}
	for _, k := range []string{"ANALYSIS_QUEUE_URL", "WEBHOOK_QUEUE_URL", "REPORT_QUEUE_URL"} {
		if !strings.HasPrefix(env[k], endpoint+"/") {
			t.Errorf("stack.env %s = %q, want a URL on %s", k, env[k], endpoint)
		}
	}

	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("table", func(t *testing.T) {
		ddb := dynamodb.NewFromConfig(cfg)
		out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(env["AUDIT_TABLE"])})
		if err != nil {
			t.Fatal(err)
		}
		tab := out.Table
		var keys []string
		for _, k := range tab.KeySchema {
			keys = append(keys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		if diff := cmp.Diff([]string{"pk HASH", "sk RANGE"}, keys); diff != "" {
			t.Errorf("key schema (-want +got):\n%s", diff)
		}
		if len(tab.GlobalSecondaryIndexes) != 1 || aws.ToString(tab.GlobalSecondaryIndexes[0].IndexName) != "gsi1" {
			t.Fatalf("GSIs = %+v, want gsi1", tab.GlobalSecondaryIndexes)
		}
		if got := string(tab.GlobalSecondaryIndexes[0].Projection.ProjectionType); got != "ALL" {
			t.Errorf("gsi1 projection = %s, want ALL", got)
		}
		if tab.BillingModeSummary == nil || tab.BillingModeSummary.BillingMode != "PAY_PER_REQUEST" {
			t.Errorf("billing mode = %+v, want PAY_PER_REQUEST", tab.BillingModeSummary)
		}
		ttl, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: tab.TableName})
		if err != nil {
			t.Fatal(err)
		}
		if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "ttl" || d.TimeToLiveStatus != "ENABLED" {
			t.Errorf("TTL = %+v, want ttl ENABLED", ttl.TimeToLiveDescription)
		}
	})

	t.Run("queues", func(t *testing.T) {
		q := sqs.NewFromConfig(cfg)
		for _, tc := range []struct {
			key, dlqKey, visibility string
		}{
			{"ANALYSIS_QUEUE_URL", "ANALYSIS_DLQ_URL", "720"},
			{"REPORT_QUEUE_URL", "REPORT_DLQ_URL", "1800"},
			{"WEBHOOK_QUEUE_URL", "WEBHOOK_DLQ_URL", "720"}, // 6 x AnalyzeFunction, its consumer
		} {
			out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
				QueueUrl: aws.String(env[tc.key]), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
			})
			if err != nil {
				t.Fatalf("%s: %v", tc.key, err)
			}
			a := out.Attributes
			if a["VisibilityTimeout"] != tc.visibility {
				t.Errorf("%s VisibilityTimeout = %s, want %s", tc.key, a["VisibilityTimeout"], tc.visibility)
			}
			dlq, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
				QueueUrl: aws.String(env[tc.dlqKey]), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
			})
			if err != nil {
				t.Fatalf("%s: %v", tc.dlqKey, err)
			}
			var redrive struct {
				DeadLetterTargetArn string `json:"deadLetterTargetArn"`
				MaxReceiveCount     any    `json:"maxReceiveCount"`
			}
			if err := json.Unmarshal([]byte(a["RedrivePolicy"]), &redrive); err != nil {
				t.Fatalf("%s RedrivePolicy %q: %v", tc.key, a["RedrivePolicy"], err)
			}
			if redrive.DeadLetterTargetArn != dlq.Attributes["QueueArn"] || fmt.Sprint(redrive.MaxReceiveCount) != "5" {
				t.Errorf("%s RedrivePolicy = %+v, want %s after 5", tc.key, redrive, dlq.Attributes["QueueArn"])
			}
		}
		pol, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(env["REPORT_QUEUE_URL"]), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy},
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := pol.Attributes["Policy"]; !strings.Contains(p, "events.amazonaws.com") || !strings.Contains(p, ":rule/") {
			t.Errorf("ReportQueue policy = %s, want events.amazonaws.com from the rule's ARN", p)
		}
	})

	t.Run("bucket", func(t *testing.T) {
		s := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		b := aws.String(env["REPORT_BUCKET"])
		v, err := s.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != "Enabled" {
			t.Errorf("versioning = %q, want Enabled", v.Status)
		}
		enc, err := s.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if r := enc.ServerSideEncryptionConfiguration.Rules; len(r) != 1 || r[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
			t.Errorf("encryption = %+v, want AES256", r)
		}
		pab, err := s.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if c := pab.PublicAccessBlockConfiguration; !aws.ToBool(c.BlockPublicAcls) || !aws.ToBool(c.BlockPublicPolicy) ||
			!aws.ToBool(c.IgnorePublicAcls) || !aws.ToBool(c.RestrictPublicBuckets) {
			t.Errorf("public access block = %+v, want all true", c)
		}
		lc, err := s.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		rules := map[string]s3types.LifecycleRule{}
		for _, r := range lc.Rules {
			rules[aws.ToString(r.ID)] = r
		}
		if r := rules["TierAndTidy"]; r.NoncurrentVersionExpiration == nil || aws.ToInt32(r.NoncurrentVersionExpiration.NoncurrentDays) != 90 {
			t.Errorf("lifecycle = %+v, want TierAndTidy: noncurrent versions expiring after 90 days", lc.Rules)
		}
		if r := rules["ExpireBatches"]; r.Filter == nil || aws.ToString(r.Filter.Prefix) != "batches/" || r.Expiration == nil ||
			aws.ToInt32(r.Expiration.Days) != 14 {
			t.Errorf("lifecycle = %+v, want ExpireBatches: batches/ expiring after 14 days", lc.Rules)
		}
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("reports/2026-11-30/audit.xlsx"), Body: strings.NewReader("{}")}); err != nil {
			t.Errorf("put a report object: %v", err)
		}
	})

	t.Run("digest key", func(t *testing.T) {
		k := kms.NewFromConfig(cfg)
		out, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(env["DIGEST_KEY_ID"])})
		if err != nil {
			t.Fatal(err)
		}
		md := out.KeyMetadata
		if md.KeySpec != kmstypes.KeySpecEccNistP256 || md.KeyUsage != kmstypes.KeyUsageTypeSignVerify ||
			!slices.Contains(md.SigningAlgorithms, kmstypes.SigningAlgorithmSpecEcdsaSha256) {
			t.Errorf("digest key = %s %s %v, want ECC_NIST_P256 SIGN_VERIFY with ECDSA_SHA_256", md.KeySpec, md.KeyUsage, md.SigningAlgorithms)
		}
		if aws.ToString(md.KeyId) != env["DIGEST_KEY_ID"] {
			t.Errorf("DIGEST_KEY_ID = %q, want the key id %q (what Ref gives)", env["DIGEST_KEY_ID"], aws.ToString(md.KeyId))
		}
		pol, err := k.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: md.KeyId, PolicyName: aws.String("default")})
		if err != nil {
			t.Fatal(err)
		}
		if p := aws.ToString(pol.Policy); !strings.Contains(p, ":iam::") || !strings.Contains(p, ":root") || strings.Contains(p, "${") {
			t.Errorf("digest key policy = %s, want the template's, with the account root resolved", p)
		}
	})

	t.Run("alarm topic and its key", func(t *testing.T) {
		physical := map[string]string{}
		for _, r := range st.Resources {
			physical[r.LogicalID] = r.PhysicalID
		}
		if physical["AlarmTopic"] == "" || physical["AlarmKey"] == "" {
			t.Fatalf("AlarmTopic %q, AlarmKey %q: want both created when AlarmEmail is given", physical["AlarmTopic"], physical["AlarmKey"])
		}
		k := kms.NewFromConfig(cfg)
		key, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(physical["AlarmKey"])})
		if err != nil {
			t.Fatal(err)
		}
		if md := key.KeyMetadata; md.KeySpec != kmstypes.KeySpecSymmetricDefault || md.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt {
			t.Errorf("alarm key = %s %s, want a symmetric encryption key (all SNS takes)", md.KeySpec, md.KeyUsage)
		}
		rot, err := k.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(physical["AlarmKey"])})
		if err != nil {
			t.Fatal(err)
		}
		if !rot.KeyRotationEnabled {
			t.Error("alarm key rotation off, want on")
		}
		pol, err := k.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(physical["AlarmKey"]), PolicyName: aws.String("default")})
		if err != nil {
			t.Fatal(err)
		}
		if p := aws.ToString(pol.Policy); !strings.Contains(p, "cloudwatch.amazonaws.com") {
			t.Errorf("alarm key policy = %s, want cloudwatch.amazonaws.com allowed", p)
		}
		attrs, err := sns.NewFromConfig(cfg).GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(physical["AlarmTopic"])})
		if err != nil {
			t.Fatal(err)
		}
		if got := attrs.Attributes["KmsMasterKeyId"]; got != aws.ToString(key.KeyMetadata.Arn) {
			t.Errorf("alarm topic KmsMasterKeyId = %q, want the alarm key %q", got, aws.ToString(key.KeyMetadata.Arn))
		}
		if !strings.HasSuffix(physical["AlarmTopic"], ":billing-audit-test-alarms") {
			t.Errorf("alarm topic = %s, want it named <stack>-alarms (the key policy names it)", physical["AlarmTopic"])
		}
	})

	t.Run("digest bucket", func(t *testing.T) {
		s := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		b := aws.String(env["DIGEST_BUCKET"])
		lock, err := s.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		c := lock.ObjectLockConfiguration
		if c == nil || c.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled || c.Rule == nil || c.Rule.DefaultRetention == nil ||
			c.Rule.DefaultRetention.Mode != s3types.ObjectLockRetentionModeCompliance || aws.ToInt32(c.Rule.DefaultRetention.Days) != 30 {
			t.Fatalf("object lock = %+v, want Enabled, COMPLIANCE for 30 days (the DigestRetentionDays given)", c)
		}
		v, err := s.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != "Enabled" {
			t.Errorf("versioning = %q, want Enabled", v.Status)
		}
		// The default retention alone must lock a version: nothing may delete it.
		put, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("digests/probe.json"), Body: strings.NewReader("{}"),
			ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("digests/probe.json"), VersionId: put.VersionId}); err == nil {
			t.Error("DeleteObject(locked version) succeeded, want it refused by the default COMPLIANCE retention")
		}
	})

	t.Run("secrets", func(t *testing.T) {
		sm := secretsmanager.NewFromConfig(cfg)
		tok, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(env["SMARTSHEET_TOKEN_SECRET_ARN"])})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(tok.SecretString) != "local-token" {
			t.Errorf("token secret = %q, want the value given", aws.ToString(tok.SecretString))
		}
		wh, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(env["WEBHOOK_SECRETS_ARN"])})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(aws.ToString(wh.SecretString)), &m); err != nil || len(m["placeholder"]) != 32 {
			t.Errorf("webhook secrets = %q (%v), want JSON with a generated placeholder", aws.ToString(wh.SecretString), err)
		}
	})

	t.Run("rule delivers AuditRunCompleted to ReportQueue", func(t *testing.T) {
		eb := eventbridge.NewFromConfig(cfg)
		q := sqs.NewFromConfig(cfg)
		bus := aws.String(env["EVENT_BUS_NAME"])
		if _, err := eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: bus}); err != nil {
			t.Fatal(err)
		}
		rules, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{EventBusName: bus})
		if err != nil {
			t.Fatal(err)
		}
		if len(rules.Rules) != 1 {
			t.Fatalf("rules on %s = %d, want 1", *bus, len(rules.Rules))
		}
		targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: rules.Rules[0].Name, EventBusName: bus})
		if err != nil {
			t.Fatal(err)
		}
		dlq, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(env["RUN_COMPLETED_DLQ_URL"]), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(targets.Targets) != 1 || targets.Targets[0].DeadLetterConfig == nil || targets.Targets[0].RetryPolicy == nil ||
			aws.ToString(targets.Targets[0].DeadLetterConfig.Arn) != dlq.Attributes["QueueArn"] {
			t.Errorf("rule targets = %+v, want one with RunCompletedDLQ (%s) and a retry policy", targets.Targets, dlq.Attributes["QueueArn"])
		}
		detail := `{"runId":"run-20261123T120000Z","startedAt":"2026-11-23T12:00:00Z","finishedAt":"2026-11-23T12:03:10Z","changes":7,"testMode":false}`
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
			{EventBusName: bus, Source: aws.String("billing-audit"), DetailType: aws.String("AuditRunStarted"), Detail: aws.String(`{"runId":"ignored"}`)},
			{EventBusName: bus, Source: aws.String("someone-else"), DetailType: aws.String("AuditRunCompleted"), Detail: aws.String(`{"runId":"ignored"}`)},
			{EventBusName: bus, Source: aws.String("billing-audit"), DetailType: aws.String("AuditRunCompleted"), Detail: aws.String(detail)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents failed entries: %+v", out.Entries)
		}
		var got []string
		deadline := time.Now().Add(10 * time.Second)
		for len(got) == 0 && time.Now().Before(deadline) {
			msgs, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(env["REPORT_QUEUE_URL"]), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs.Messages {
				got = append(got, aws.ToString(m.Body))
			}
		}
		if len(got) != 1 {
			t.Fatalf("ReportQueue received %d messages, want exactly the one AuditRunCompleted from billing-audit: %q", len(got), got)
		}
		var ev struct {
			Source     string          `json:"source"`
			DetailType string          `json:"detail-type"`
			Detail     json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal([]byte(got[0]), &ev); err != nil {
			t.Fatalf("message is not an EventBridge event: %v: %s", err, got[0])
		}
		var d struct {
			RunID string `json:"runId"`
		}
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if ev.Source != "billing-audit" || ev.DetailType != "AuditRunCompleted" || d.RunID != "run-20261123T120000Z" {
			t.Errorf("delivered event = %s, want source billing-audit, AuditRunCompleted, runId run-20261123T120000Z", got[0])
		}
	})
}

func readEnv(tb testing.TB, path string) map[string]string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = strings.Trim(v, "'")
	}
	return env
}

// fakeKMS is a function-field fake of KMSAPI.
type fakeKMS struct {
	createKey func(*kms.CreateKeyInput) (*kms.CreateKeyOutput, error)
}

func (f fakeKMS) CreateKey(_ context.Context, in *kms.CreateKeyInput, _ ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	return f.createKey(in)
}

func (f fakeKMS) PutKeyPolicy(context.Context, *kms.PutKeyPolicyInput, ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	return nil, errors.New("fakeKMS: PutKeyPolicy not expected")
}

var _ KMSAPI = fakeKMS{}

func TestCreateKey(t *testing.T) {
	policy := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Allow", "Action": "kms:*"}}}
	tests := []struct {
		name    string
		props   map[string]any
		want    string // the CreateKey request, summarised
		wantErr string
	}{
		{name: "signing key", props: map[string]any{"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "Description": "d", "KeyPolicy": policy},
			want: `ECC_NIST_P256 SIGN_VERIFY d {"Statement":[{"Action":"kms:*","Effect":"Allow"}],"Version":"2012-10-17"}`},
		{name: "policy as a JSON string", props: map[string]any{"KeyPolicy": `{"Version":"2012-10-17"}`},
			want: `   {"Version":"2012-10-17"}`},
		{name: "deletion window ignored", props: map[string]any{"KeySpec": "ECC_NIST_P256", "PendingWindowInDays": 7},
			want: "ECC_NIST_P256   "},
		{name: "unknown property", props: map[string]any{"MultiRegion": true}, wantErr: "MultiRegion has no local equivalent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			id, err := createKey(context.Background(), fakeKMS{createKey: func(in *kms.CreateKeyInput) (*kms.CreateKeyOutput, error) {
				got = fmt.Sprintf("%s %s %s %s", in.KeySpec, in.KeyUsage, aws.ToString(in.Description), aws.ToString(in.Policy))
				return &kms.CreateKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: aws.String("key-1")}}, nil
			}}, tt.props)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("createKey(%v) error = %v, want %q", tt.props, err, tt.wantErr)
				}
				return
			}
			if err != nil || id != "key-1" || got != tt.want {
				t.Errorf("createKey(%v) = %q, %v sending %q, want key-1 sending %q", tt.props, id, err, got, tt.want)
			}
		})
	}
}

func TestPositiveInt32(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want int32
		ok   bool
	}{
		{"template number", 2557, 2557, true},
		{"parameter evaluated by moto", "30", 30, true},
		{"zero", 0, 0, false},
		{"not a number", "seven years", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := positiveInt32(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("positiveInt32(%v) = %d, %v, want %d (ok %v)", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

// startMoto is localstacktest.StartMoto, which this package's own tests
// cannot import (it imports this package).
func startMoto(t *testing.T) string {
	t.Helper()
	m, err := RunMoto(context.Background())
	if errors.Is(err, ErrNoMoto) {
		t.Skipf("%v: skipping", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m.URL
}
