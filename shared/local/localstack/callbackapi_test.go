package localstack

import (
	"os"
	"strings"
	"testing"
)

// TestPrepareWebhookCallbackApi: the plain API Gateway v2 resources of the
// webhook callback API (testdata/webhook-callback-api.yaml, the change
// recommended for template.yaml) are removed locally like the function they
// invoke, and the output naming them is dropped.
func TestPrepareWebhookCallbackApi(t *testing.T) {
	src, err := os.ReadFile("testdata/webhook-callback-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(src)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Prepare(tmpl)
	if err != nil {
		t.Fatalf("Prepare(webhook callback API) = %v", err)
	}
	for id, want := range map[string]Disposition{
		"WebhookCallbackApi": Removed, "WebhookCallbackIntegration": Removed, "WebhookCallbackRoute": Removed,
		"WebhookCallbackStage": Removed, "WebhookCallbackPermission": Removed, "WebhookQueue": InStack,
	} {
		if got := plan.Disposition[id]; got != want {
			t.Errorf("Prepare().Disposition[%s] = %v, want %v", id, got, want)
		}
	}
	if strings.Contains(plan.Body, "AWS::ApiGatewayV2") || strings.Contains(plan.Body, "WebhookUrl") {
		t.Errorf("Prepare() body keeps the callback API or its output:\n%s", plan.Body)
	}
}
