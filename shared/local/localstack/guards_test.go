package localstack

import (
	"fmt"
	"maps"
	"os"
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
	src, err := os.ReadFile(templateFile)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl, err := ParseTemplate(src)
	if err != nil {
		tb.Fatal(err)
	}
	res, ok := tmpl["Resources"].(map[string]any)
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
