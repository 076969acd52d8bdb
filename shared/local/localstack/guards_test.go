package localstack

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/google/go-cmp/cmp"
)

// The guards of template.yaml that a review asked for (issue 14), checked on
// the template itself, so that a later edit cannot quietly widen a role, drop
// a dead-letter queue or a log. Each test names what it holds and why; the
// deployment tests (TestDeployToMoto, the local chain) show the template
// still deploys with them.

// mustResources parses the real template and returns its resources by
// logical id.
func mustResources(tb testing.TB) map[string]map[string]any {
	tb.Helper()
	res, ok := mustTemplate(tb)["Resources"].(map[string]any)
	if !ok {
		tb.Fatal("template has no Resources")
	}
	out := make(map[string]map[string]any, len(res))
	for id, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			tb.Fatalf("resource %s is %T", id, r)
		}
		out[id] = m
	}
	return out
}

// mustTemplate is template.yaml parsed.
func mustTemplate(tb testing.TB) map[string]any {
	tb.Helper()
	src, err := os.ReadFile(templateFile)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl, err := ParseTemplate(src)
	if err != nil {
		tb.Fatal(err)
	}
	return tmpl
}

// findSub finds, anywhere in v, the first Fn::Sub whose string ends with
// suffix, and returns its arguments (nil when there is none).
func findSub(v any, suffix string) []any {
	switch v := v.(type) {
	case map[string]any:
		if s, ok := v["Fn::Sub"].([]any); ok && len(s) > 0 && strings.HasSuffix(fmt.Sprint(s[0]), suffix) {
			return s
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if s := findSub(v[k], suffix); s != nil {
				return s
			}
		}
	case []any:
		for _, e := range v {
			if s := findSub(e, suffix); s != nil {
				return s
			}
		}
	}
	return nil
}

// ofType lists the logical ids of the resources of type typ, sorted.
func ofType(res map[string]map[string]any, typ string) []string {
	var ids []string
	for id, r := range res {
		if r["Type"] == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// field walks nested mappings: field(m, "A", "B") is m.A.B, nil when absent.
func field(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// strs reads a policy's "one string or a list of strings".
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// statements lists the statements of a role's inline policies.
func statements(role map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range asList(props(role)["Policies"]) {
		doc, _ := p["PolicyDocument"].(map[string]any)
		out = append(out, asList(doc["Statement"])...)
	}
	return out
}

func asList(v any) []map[string]any { return list(v) }

// getAtt says whether v is !GetAtt id.attr.
func getAtt(v any, id, attr string) bool {
	return cmp.Equal(v, map[string]any{"Fn::GetAtt": []any{id, attr}})
}

// ref says whether v is !Ref id.
func ref(v any, id string) bool { return cmp.Equal(v, map[string]any{"Ref": id}) }

// TestTemplateWebhookRoleWritesOnlyItsOwnItems: the internet-facing webhook
// function may write only the partitions of its own items
// (dynamo.WebhookKeyPrefixes, which shared/aws/dynamo's
// TestWebhookWritesOnlyItsOwnPartitions checks against what it writes), read
// nothing, and have no other source of permissions.
func TestTemplateWebhookRoleWritesOnlyItsOwnItems(t *testing.T) {
	res := mustResources(t)
	fn := props(res["WebhookFunction"])
	if !getAtt(fn["Role"], "WebhookRole", "Arn") || fn["Policies"] != nil {
		t.Fatalf("WebhookFunction Role = %v, Policies = %v, want WebhookRole's and no SAM policies", fn["Role"], fn["Policies"])
	}
	role := res["WebhookRole"]
	if mp := props(role)["ManagedPolicyArns"]; mp != nil {
		t.Errorf("WebhookRole ManagedPolicyArns = %v, want none (a managed policy would escape these checks)", mp)
	}
	var want []string
	for _, p := range dynamo.WebhookKeyPrefixes() {
		want = append(want, p+"*")
	}
	slices.Sort(want)
	writes := []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
	var granted []string
	for _, st := range statements(role) {
		sid := fmt.Sprint(st["Sid"])
		if st["Effect"] != "Allow" {
			continue
		}
		if st["NotAction"] != nil || st["NotResource"] != nil {
			t.Errorf("WebhookRole statement %s allows NotAction/NotResource: it could grant DynamoDB unseen", sid)
		}
		var ddb []string
		for _, a := range strs(st["Action"]) {
			if strings.Contains(a, "*") && !strings.HasPrefix(strings.ToLower(a), "xray:") {
				t.Errorf("WebhookRole statement %s allows %q: no wildcard actions", sid, a)
			}
			if strings.HasPrefix(strings.ToLower(a), "dynamodb:") {
				ddb = append(ddb, a)
			}
		}
		if len(ddb) == 0 {
			continue
		}
		for _, a := range ddb {
			if !slices.Contains(writes, a) {
				t.Errorf("WebhookRole statement %s allows %s: the webhook reads nothing and writes only with %v", sid, a, writes)
			}
		}
		granted = append(granted, ddb...)
		if !getAtt(st["Resource"], "AuditTable", "Arn") {
			t.Errorf("WebhookRole statement %s Resource = %v, want the audit table alone (no index)", sid, st["Resource"])
		}
		got := strs(field(st, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys"))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("WebhookRole statement %s ForAllValues:StringLike dynamodb:LeadingKeys = %q, want %q (dynamo.WebhookKeyPrefixes)", sid, got, want)
		}
		if null := field(st, "Condition", "Null", "dynamodb:LeadingKeys"); fmt.Sprint(null) != "false" {
			t.Errorf("WebhookRole statement %s Null dynamodb:LeadingKeys = %v, want false (a request with no key passes ForAllValues)", sid, null)
		}
	}
	slices.Sort(granted)
	if want := slices.Sorted(slices.Values(writes)); !slices.Equal(granted, want) {
		t.Errorf("WebhookRole DynamoDB actions = %v, want %v (what the webhook store uses)", granted, want)
	}
}

// TestTemplateAlarmTopicsUseACustomerKey: CloudWatch alarms cannot publish to
// a topic encrypted with SNS's AWS managed key (alias/aws/sns), so every topic
// an alarm notifies is encrypted with a key of the template's own, rotated,
// administered by the account and usable by cloudwatch.amazonaws.com.
func TestTemplateAlarmTopicsUseACustomerKey(t *testing.T) {
	res := mustResources(t)
	topics := map[string]bool{}
	for _, id := range ofType(res, "AWS::CloudWatch::Alarm") {
		for _, k := range []string{"AlarmActions", "OKActions", "InsufficientDataActions"} {
			for _, name := range refs(props(res[id])[k]) {
				if res[name]["Type"] == "AWS::SNS::Topic" {
					topics[name] = true
				}
			}
		}
	}
	if !topics["AlarmTopic"] {
		t.Fatalf("alarm topics = %v, want AlarmTopic among them", topics)
	}
	for _, topic := range slices.Sorted(maps.Keys(topics)) {
		kmsKey := props(res[topic])["KmsMasterKeyId"]
		var keyID string
		if m, ok := kmsKey.(map[string]any); ok {
			if ids := refs(m); len(ids) == 1 && (getAtt(m, ids[0], "Arn") || ref(m, ids[0])) {
				keyID = ids[0]
			}
		}
		key := res[keyID]
		if key["Type"] != "AWS::KMS::Key" {
			t.Errorf("%s KmsMasterKeyId = %v, want a key of this template (CloudWatch cannot use alias/aws/sns)", topic, kmsKey)
			continue
		}
		if key["Condition"] != res[topic]["Condition"] {
			t.Errorf("%s Condition = %v, its topic's %v: want the key exactly when the topic exists", keyID, key["Condition"], res[topic]["Condition"])
		}
		if props(key)["EnableKeyRotation"] != true {
			t.Errorf("%s EnableKeyRotation = %v, want true", keyID, props(key)["EnableKeyRotation"])
		}
		if spec := props(key)["KeySpec"]; spec != nil && spec != "SYMMETRIC_DEFAULT" {
			t.Errorf("%s KeySpec = %v, want symmetric (all SNS takes)", keyID, spec)
		}
		var rootAdmin, cloudWatch bool
		for _, st := range asList(field(props(key), "KeyPolicy", "Statement")) {
			if st["Effect"] != "Allow" {
				continue
			}
			actions := strs(st["Action"])
			principal, _ := st["Principal"].(map[string]any)
			if sub, _ := field(principal, "AWS", "Fn::Sub").(string); strings.HasSuffix(sub, ":root") && slices.Contains(actions, "kms:*") {
				rootAdmin = true
			}
			if slices.Contains(strs(principal["Service"]), "cloudwatch.amazonaws.com") &&
				slices.Contains(actions, "kms:GenerateDataKey*") && slices.Contains(actions, "kms:Decrypt") {
				cloudWatch = true
				// SNS asks KMS with the topic's ARN as encryption context: a
				// condition naming another topic (the topic renamed, the
				// policy not) deploys cleanly and drops every alarm.
				arn := field(st, "Condition", "StringEquals", "kms:EncryptionContext:aws:sns:topicArn", "Fn::Sub")
				name, _ := field(props(res[topic]), "TopicName", "Fn::Sub").(string)
				if want := "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:" + name; name == "" || arn != want {
					t.Errorf("%s: CloudWatch's statement is for topic %v, want %s (%s's TopicName)", keyID, arn, want, topic)
				}
			}
		}
		if !rootAdmin || !cloudWatch {
			t.Errorf("%s key policy: account root administers = %v, cloudwatch.amazonaws.com may GenerateDataKey* and Decrypt = %v; want both",
				keyID, rootAdmin, cloudWatch)
		}
	}
}

// smartsheetFleet is how many invocations may call Smartsheet at once: the
// figure the shared rate budget was sized and measured with
// (shared/aws/dynamo doc.go, BENCHMARKS.md's make scale).
const smartsheetFleet = 7

// TestTemplateReservedConcurrencyHoldsTheRateBudget: every function has a
// reserved concurrency; a function fed by SQS reserves exactly what its event
// sources may run at once (less would throttle them and push messages towards
// their DLQs, more would be unused or split the rate budget); and the
// functions that read the Smartsheet token reserve the budget's fleet in all.
func TestTemplateReservedConcurrencyHoldsTheRateBudget(t *testing.T) {
	res := mustResources(t)
	fleet := 0
	for _, id := range append(ofType(res, "AWS::Serverless::Function"), ofType(res, "AWS::Lambda::Function")...) {
		p := props(res[id])
		reserved, ok := p["ReservedConcurrentExecutions"].(int)
		if !ok || reserved < 1 {
			t.Errorf("%s ReservedConcurrentExecutions = %v, want a positive number", id, p["ReservedConcurrentExecutions"])
			continue
		}
		sqsConcurrency, fromSQS := 0, false
		events, _ := p["Events"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(events)) {
			ev, _ := events[name].(map[string]any)
			if ev["Type"] != "SQS" {
				continue
			}
			fromSQS = true
			n, ok := field(ev, "Properties", "ScalingConfig", "MaximumConcurrency").(int)
			if !ok {
				t.Errorf("%s event %s has no ScalingConfig.MaximumConcurrency: its concurrency would be unbounded", id, name)
			}
			sqsConcurrency += n
		}
		if fromSQS && reserved != sqsConcurrency {
			t.Errorf("%s ReservedConcurrentExecutions = %d, want %d (its SQS events' MaximumConcurrency added up)", id, reserved, sqsConcurrency)
		}
		roles := refs(p["Role"])
		if len(roles) != 1 {
			t.Errorf("%s Role = %v, want one of the template's roles", id, p["Role"])
			continue
		}
		for _, st := range statements(res[roles[0]]) {
			if st["Effect"] == "Allow" && slices.Contains(strs(st["Action"]), "secretsmanager:GetSecretValue") && ref(st["Resource"], "SmartsheetTokenSecret") {
				fleet += reserved
				break
			}
		}
	}
	if fleet != smartsheetFleet {
		t.Errorf("functions that read the Smartsheet token reserve %d invocations, want %d (the rate budget's fleet)", fleet, smartsheetFleet)
	}
}

// Event types of SAM functions: those through which Lambda invokes a
// function asynchronously (its EventInvokeConfig then decides what happens to
// a failure), and those that are not (SQS is polled, with the queue's
// RedrivePolicy; an HTTP API waits for the answer). A new type must be put in
// one of them.
var (
	asyncEventTypes = []string{"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3", "CloudWatchLogs", "IoTRule", "Cognito"}
	syncEventTypes  = []string{"SQS", "HttpApi", "Api"}
)

// allowsSend says whether role has an Allow of sqs:SendMessage on the queue.
func allowsSend(role map[string]any, queue string) bool {
	for _, st := range statements(role) {
		if st["Effect"] == "Allow" && slices.Contains(strs(st["Action"]), "sqs:SendMessage") && getAtt(st["Resource"], queue, "Arn") {
			return true
		}
	}
	return false
}

// sqsArn returns Q when v is !GetAtt Q.Arn and Q is a queue of the template.
func sqsArn(res map[string]map[string]any, v any) string {
	ids := refs(v)
	if len(ids) == 1 && getAtt(v, ids[0], "Arn") && res[ids[0]]["Type"] == "AWS::SQS::Queue" {
		return ids[0]
	}
	return ""
}

// TestTemplateAsyncEdgesKeepTheirFailures: every asynchronous edge ends in a
// dead-letter queue after bounded retries. A function Lambda invokes
// asynchronously has an OnFailure destination (a queue its own role may send
// to: SAM grants that only to roles it generates) and MaximumRetryAttempts;
// each of its schedule or rule events has a DeadLetterConfig and a
// RetryPolicy; every EventBridge rule target has both, its queue's policy
// letting that rule send. Not checked here: the alert and alarm topics'
// e-mail and SMS subscriptions. SNS retries those itself, a dead-letter
// queue for them would need its own customer key (an encrypted queue SNS
// may write to), and nothing is lost with them: every change is on the
// audit sheet and in the workbook, and the Slack and Teams channels record
// each delivery in the store.
func TestTemplateAsyncEdgesKeepTheirFailures(t *testing.T) {
	res := mustResources(t)
	asyncFunctions := 0
	for _, id := range ofType(res, "AWS::Serverless::Function") {
		p := props(res[id])
		events, _ := p["Events"].(map[string]any)
		async := false
		for _, name := range slices.Sorted(maps.Keys(events)) {
			ev, _ := events[name].(map[string]any)
			typ, _ := ev["Type"].(string)
			switch {
			case slices.Contains(asyncEventTypes, typ):
				async = true
				if typ == "Schedule" || typ == "ScheduleV2" || typ == "EventBridgeRule" || typ == "CloudWatchEvent" {
					if sqsArn(res, field(ev, "Properties", "DeadLetterConfig", "Arn")) == "" {
						t.Errorf("%s event %s DeadLetterConfig = %v, want the Arn of a queue of the template", id, name, field(ev, "Properties", "DeadLetterConfig"))
					}
					if _, ok := field(ev, "Properties", "RetryPolicy", "MaximumRetryAttempts").(int); !ok {
						t.Errorf("%s event %s RetryPolicy = %v, want MaximumRetryAttempts", id, name, field(ev, "Properties", "RetryPolicy"))
					}
				}
			case slices.Contains(syncEventTypes, typ):
			default:
				t.Errorf("%s event %s has type %q: add it to asyncEventTypes or syncEventTypes", id, name, typ)
			}
		}
		if !async {
			continue
		}
		asyncFunctions++
		cfg, _ := p["EventInvokeConfig"].(map[string]any)
		if _, ok := cfg["MaximumRetryAttempts"].(int); !ok {
			t.Errorf("%s EventInvokeConfig.MaximumRetryAttempts = %v, want a number", id, cfg["MaximumRetryAttempts"])
		}
		onFailure, _ := field(cfg, "DestinationConfig", "OnFailure").(map[string]any)
		queue := sqsArn(res, onFailure["Destination"])
		if onFailure["Type"] != "SQS" || queue == "" {
			t.Errorf("%s EventInvokeConfig.DestinationConfig.OnFailure = %v, want Type SQS and a queue of the template", id, onFailure)
			continue
		}
		if roles := refs(p["Role"]); len(roles) != 1 || !allowsSend(res[roles[0]], queue) {
			t.Errorf("%s role %v does not allow sqs:SendMessage on its OnFailure queue %s", id, roles, queue)
		}
	}
	if asyncFunctions == 0 {
		t.Error("no function is invoked asynchronously; want at least ScanFunction (its schedule)")
	}

	policies := map[string][]map[string]any{} // queue -> statements of its QueuePolicy
	for _, id := range ofType(res, "AWS::SQS::QueuePolicy") {
		for _, q := range refs(props(res[id])["Queues"]) {
			policies[q] = append(policies[q], asList(field(props(res[id]), "PolicyDocument", "Statement"))...)
		}
	}
	rules := ofType(res, "AWS::Events::Rule")
	if len(rules) == 0 {
		t.Fatal("no EventBridge rule; want RunCompletedRule")
	}
	for _, rule := range rules {
		for i, target := range asList(props(res[rule])["Targets"]) {
			dlq := sqsArn(res, field(target, "DeadLetterConfig", "Arn"))
			if dlq == "" {
				t.Errorf("%s target %d DeadLetterConfig = %v, want the Arn of a queue of the template", rule, i, target["DeadLetterConfig"])
			} else if !slices.ContainsFunc(policies[dlq], func(st map[string]any) bool {
				return st["Effect"] == "Allow" && slices.Contains(strs(field(st, "Principal", "Service")), "events.amazonaws.com") &&
					slices.Contains(strs(st["Action"]), "sqs:SendMessage") && getAtt(field(st, "Condition", "ArnEquals", "aws:SourceArn"), rule, "Arn")
			}) {
				t.Errorf("%s target %d: no policy of %s lets events.amazonaws.com send from the rule (aws:SourceArn)", rule, i, dlq)
			}
			for _, k := range []string{"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} {
				if _, ok := field(target, "RetryPolicy", k).(int); !ok {
					t.Errorf("%s target %d RetryPolicy.%s = %v, want a number", rule, i, k, field(target, "RetryPolicy", k))
				}
			}
		}
	}
}

// TestTemplateQueuesEndInWatchedDLQs: every queue is either a dead-letter
// queue or has a RedrivePolicy to one; every dead-letter queue keeps its
// messages 14 days (SQS's most) and has an alarm on its visible messages.
func TestTemplateQueuesEndInWatchedDLQs(t *testing.T) {
	res := mustResources(t)
	dlqs := map[string]bool{}
	var walk func(any)
	walk = func(v any) { // every queue named as a dead-letter target or an OnFailure destination
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "deadLetterTargetArn" || k == "DeadLetterConfig" || k == "OnFailure" {
					for _, id := range refs(e) {
						if res[id]["Type"] == "AWS::SQS::Queue" {
							dlqs[id] = true
						}
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, r := range res {
		walk(r)
	}
	sources := map[string]bool{} // queues an SQS event reads
	for _, id := range ofType(res, "AWS::Serverless::Function") {
		events, _ := props(res[id])["Events"].(map[string]any)
		for _, ev := range events {
			if m, _ := ev.(map[string]any); m["Type"] == "SQS" {
				sources[sqsArn(res, field(m, "Properties", "Queue"))] = true
			}
		}
	}
	watched := map[string]bool{}
	for _, id := range ofType(res, "AWS::CloudWatch::Alarm") {
		p := props(res[id])
		if p["Namespace"] != "AWS/SQS" || p["MetricName"] != "ApproximateNumberOfMessagesVisible" {
			continue
		}
		for _, d := range asList(p["Dimensions"]) {
			if ids := refs(d["Value"]); d["Name"] == "QueueName" && len(ids) == 1 && getAtt(d["Value"], ids[0], "QueueName") {
				watched[ids[0]] = true
			}
		}
	}
	for _, q := range ofType(res, "AWS::SQS::Queue") {
		p := props(res[q])
		if dlqs[q] {
			if sources[q] {
				t.Errorf("%s is a dead-letter queue and an event source: its failures would have nowhere to go", q)
			}
			if p["MessageRetentionPeriod"] != 1209600 {
				t.Errorf("%s MessageRetentionPeriod = %v, want 1209600 (14 days, SQS's most)", q, p["MessageRetentionPeriod"])
			}
			if !watched[q] {
				t.Errorf("%s has no alarm on ApproximateNumberOfMessagesVisible: a failure there would go unseen", q)
			}
			continue
		}
		target := sqsArn(res, field(p, "RedrivePolicy", "deadLetterTargetArn"))
		if n, ok := field(p, "RedrivePolicy", "maxReceiveCount").(int); !ok || n < 1 || target == "" {
			t.Errorf("%s RedrivePolicy = %v, want a deadLetterTargetArn of this template and a maxReceiveCount", q, p["RedrivePolicy"])
		}
	}
	if len(sources) == 0 || len(dlqs) == 0 {
		t.Errorf("source queues %v, dead-letter queues %v: want both", sources, dlqs)
	}
}

// TestTemplateHTTPAPIsLogAccess: every HTTP API writes an access log line per
// request (those refused before the function included) to a log group of the
// template that has a retention; the line is JSON with the request id and the
// status, and carries no header or body (the callbacks' signatures).
func TestTemplateHTTPAPIsLogAccess(t *testing.T) {
	res := mustResources(t)
	apis := append(ofType(res, "AWS::Serverless::HttpApi"), ofType(res, "AWS::ApiGatewayV2::Stage")...)
	if len(apis) == 0 {
		t.Fatal("no HTTP API; want WebhookApi")
	}
	for _, id := range apis {
		logs, _ := props(res[id])["AccessLogSettings"].(map[string]any)
		dest := logs["DestinationArn"]
		group := refs(dest)
		if len(group) != 1 || !getAtt(dest, group[0], "Arn") || res[group[0]]["Type"] != "AWS::Logs::LogGroup" {
			t.Errorf("%s AccessLogSettings.DestinationArn = %v, want !GetAtt <a LogGroup of the template>.Arn", id, dest)
			continue
		}
		if props(res[group[0]])["RetentionInDays"] == nil {
			t.Errorf("%s's access log group %s has no RetentionInDays: it would be kept forever", id, group[0])
		}
		format, _ := logs["Format"].(string)
		var line map[string]string
		if err := json.Unmarshal([]byte(format), &line); err != nil {
			t.Errorf("%s access log Format is not a JSON object of strings: %v", id, err)
		}
		for _, want := range []string{"$context.requestId", "$context.status", "$context.identity.sourceIp"} {
			if !slices.Contains(slices.Collect(maps.Values(line)), want) {
				t.Errorf("%s access log Format has no %s", id, want)
			}
		}
		for _, never := range []string{"header", "body", "$input", "authorizer"} {
			if strings.Contains(strings.ToLower(format), never) {
				t.Errorf("%s access log Format mentions %q: no header, body or credential goes to the log", id, never)
			}
		}
	}
}

// TestTemplateRawBatchesExpire: the raw rows under the report bucket's
// batches/ (written before issue 11 by stacks of an older version) expire, old
// versions included, and no role may write or read them any more.
func TestTemplateRawBatchesExpire(t *testing.T) {
	res := mustResources(t)
	var found bool
	for _, r := range asList(field(props(res["ReportBucket"]), "LifecycleConfiguration", "Rules")) {
		if r["Prefix"] != "batches/" && field(r, "Filter", "Prefix") != "batches/" {
			continue
		}
		found = true
		days, _ := r["ExpirationInDays"].(int)
		old, _ := field(r, "NoncurrentVersionExpiration", "NoncurrentDays").(int)
		if r["Status"] != "Enabled" || days < 1 || days > 14 || old < 1 || old > days {
			t.Errorf("ReportBucket rule %v: Status %v, ExpirationInDays %d, NoncurrentDays %d; want Enabled, 1-14 days, old versions no later",
				r["Id"], r["Status"], days, old)
		}
	}
	if !found {
		t.Error("ReportBucket has no lifecycle rule for batches/: raw row data would be kept forever")
	}
	for _, role := range ofType(res, "AWS::IAM::Role") {
		for _, st := range statements(res[role]) {
			if b, _ := json.Marshal(st["Resource"]); strings.Contains(string(b), "batches/") {
				t.Errorf("%s statement %v names batches/: nothing writes or reads them now", role, st["Sid"])
			}
		}
	}
}

// TestTemplateSmartsheetBaseURLIsHTTPS: the stack takes only an https://
// Smartsheet API root (the token goes with every request; a deployed function
// never has a loopback simulator, the one case config allows http:// for).
func TestTemplateSmartsheetBaseURLIsHTTPS(t *testing.T) {
	src, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(src)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := field(tmpl, "Parameters", "SmartsheetBaseUrl").(map[string]any)
	pattern, _ := p["AllowedPattern"].(string)
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("SmartsheetBaseUrl AllowedPattern %q: %v", pattern, err)
	}
	if !cmp.Equal(field(tmpl, "Globals", "Function", "Environment", "Variables", "SMARTSHEET_BASE_URL"), map[string]any{"Ref": "SmartsheetBaseUrl"}) {
		t.Errorf("SMARTSHEET_BASE_URL is not !Ref SmartsheetBaseUrl: the pattern would not guard it")
	}
	tests := []struct {
		url  string
		want bool
	}{
		{fmt.Sprint(p["Default"]), true},
		{"https://api.smartsheet.eu/2.0", true},
		{"https://api.smartsheet.com", true},
		{"http://api.smartsheet.com/2.0", false},
		{"http://127.0.0.1:8089/2.0", false},
		{"https://", false},
		{"ftp://api.smartsheet.com", false},
	}
	for _, tt := range tests {
		if got := re.MatchString(tt.url); got != tt.want {
			t.Errorf("SmartsheetBaseUrl AllowedPattern %q matches %q = %v, want %v", pattern, tt.url, got, tt.want)
		}
	}
}

// TestTemplateWebhookRouteIsSmartsheetsAlone: junk cannot starve Smartsheet's
// callbacks. The webhook function is reachable by one route only, POST
// /webhooks/smartsheet/<key> with the key a parameter (or the stack's id)
// that only the registered callback URL carries; the stage throttles it; no
// SAM HttpApi event or other route leads to the function (a guessable path
// would share the bucket with whoever floods it).
func TestTemplateWebhookRouteIsSmartsheetsAlone(t *testing.T) {
	res := mustResources(t)
	if events, _ := props(res["WebhookFunction"])["Events"].(map[string]any); len(events) != 0 {
		t.Errorf("WebhookFunction has events %v: its only way in is WebhookApiRoute", slices.Collect(maps.Keys(events)))
	}
	routes := ofType(res, "AWS::ApiGatewayV2::Route")
	if len(routes) != 1 {
		t.Fatalf("routes %v, want one (WebhookApiRoute)", routes)
	}
	key, _ := props(res[routes[0]])["RouteKey"].(map[string]any)
	sub, _ := key["Fn::Sub"].([]any)
	if len(sub) != 2 || sub[0] != "POST /webhooks/smartsheet/${Key}" || !strings.Contains(fmt.Sprint(sub[1]), "WebhookPathKey") ||
		!strings.Contains(fmt.Sprint(sub[1]), "AWS::StackId") {
		t.Errorf("%s RouteKey = %v, want POST /webhooks/smartsheet/${Key} with Key WebhookPathKey or the stack id", routes[0], key)
	}
	// The URL the scan registers with Smartsheet and the WebhookUrl output
	// must name the route's own key: a URL built differently would get
	// API Gateway's 404 for every callback, and verification would fail.
	routeKey := ""
	if len(sub) == 2 {
		routeKey = fmt.Sprint(sub[1])
	}
	urls := map[string]any{
		"ScanFunction WEBHOOK_CALLBACK_URL": field(props(res["ScanFunction"]), "Environment", "Variables", "WEBHOOK_CALLBACK_URL"),
		"Outputs.WebhookUrl":                field(mustTemplate(t), "Outputs", "WebhookUrl", "Value"),
	}
	for name, v := range urls {
		url := findSub(v, "/webhooks/smartsheet/${Key}")
		if len(url) != 2 || !strings.HasSuffix(fmt.Sprint(url[0]), "/webhooks/smartsheet/${Key}") || fmt.Sprint(url[1]) != routeKey {
			t.Errorf("%s = %v, want .../webhooks/smartsheet/${Key} with the route's Key %s", name, v, routeKey)
		}
	}
	params, _ := mustTemplate(t)["Parameters"].(map[string]any)
	pattern, _ := field(params, "WebhookPathKey", "AllowedPattern").(string)
	for key, want := range map[string]bool{"": true, "a": false, "abc-def": false, strings.Repeat("k", 20): true, "x7Yq-3_pL9mZ2vB8nR4tW": true, "bad/slash-and-then-more": false} {
		if got := regexp.MustCompile(pattern).MatchString(key); got != want {
			t.Errorf("WebhookPathKey %q allowed = %v, want %v (empty, or 20+ characters: a short key is guessed)", key, got, want)
		}
	}
	stages := ofType(res, "AWS::ApiGatewayV2::Stage")
	if len(stages) != 1 {
		t.Fatalf("stages %v, want one", stages)
	}
	rs, _ := props(res[stages[0]])["DefaultRouteSettings"].(map[string]any)
	if rs["ThrottlingRateLimit"] == nil || rs["ThrottlingBurstLimit"] == nil {
		t.Errorf("%s DefaultRouteSettings = %v, want a rate and burst limit", stages[0], rs)
	}
	for _, id := range ofType(res, "AWS::Lambda::Permission") {
		if src := fmt.Sprint(props(res[id])["SourceArn"]); strings.Contains(src, "WebhookApi") && !strings.Contains(src, "/*/POST/webhooks/smartsheet/*") {
			t.Errorf("%s SourceArn = %s: want only POST /webhooks/smartsheet/* of the API", id, src)
		}
	}
}
