package localstack

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// CloudFormationAPI is the part of the CloudFormation client the deployment uses.
type CloudFormationAPI interface {
	CreateStack(ctx context.Context, params *cloudformation.CreateStackInput, optFns ...func(*cloudformation.Options)) (*cloudformation.CreateStackOutput, error)
	DescribeStacks(ctx context.Context, params *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackResources(ctx context.Context, params *cloudformation.DescribeStackResourcesInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourcesOutput, error)
}

// SQSAPI is the part of the SQS client the deployment uses.
type SQSAPI interface {
	GetQueueUrl(ctx context.Context, params *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	SetQueueAttributes(ctx context.Context, params *sqs.SetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error)
}

// S3API is the part of the S3 client the deployment uses.
type S3API interface {
	PutBucketPolicy(ctx context.Context, params *s3.PutBucketPolicyInput, optFns ...func(*s3.Options)) (*s3.PutBucketPolicyOutput, error)
}

// SecretsManagerAPI is the part of the Secrets Manager client the deployment uses.
type SecretsManagerAPI interface {
	CreateSecret(ctx context.Context, params *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
}

// KMSAPI is the part of the KMS client the deployment uses.
type KMSAPI interface {
	CreateKey(ctx context.Context, params *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	PutKeyPolicy(ctx context.Context, params *kms.PutKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
}

var (
	_ CloudFormationAPI = (*cloudformation.Client)(nil)
	_ SQSAPI            = (*sqs.Client)(nil)
	_ S3API             = (*s3.Client)(nil)
	_ SecretsManagerAPI = (*secretsmanager.Client)(nil)
	_ KMSAPI            = (*kms.Client)(nil)
)

// Clients are the AWS clients the deployment uses, all pointed at the local endpoint.
type Clients struct {
	CloudFormation CloudFormationAPI
	SQS            SQSAPI
	S3             S3API
	SecretsManager SecretsManagerAPI
	DynamoDB       DynamoDBAPI
	S3Settings     S3SettingsAPI
	KMS            KMSAPI
}

// Options of a deployment.
type Options struct {
	StackName string
	// Parameters are the template parameters to set (the others keep their defaults).
	Parameters map[string]string
	// SecretValues sets the value of a secret by logical id; otherwise it is generated as the template says.
	SecretValues map[string]string
	// Timeout bounds the wait for CREATE_COMPLETE.
	Timeout time.Duration
}

// Resource is one resource of the template and where it ended up.
type Resource struct {
	LogicalID   string
	Type        string
	PhysicalID  string
	Disposition Disposition
}

// Stack is the deployed local stack.
type Stack struct {
	Name string
	// Resources lists every resource of the template, in logical-id order.
	Resources []Resource
	// Outputs are the template's outputs that the local stack has.
	Outputs map[string]string
	// QueueURLs maps a queue's logical id to its URL on the local endpoint.
	QueueURLs map[string]string
	// Completed lists the properties moto's CloudFormation ignored that the deployer applied (Resource.Property).
	Completed []string
	// Env is the Lambda environment (Globals.Function.Environment) with the local stack's values.
	Env map[string]string
}

// Deploy creates the stack in moto, applies the resources moto's CloudFormation lacks, and resolves the names.
func Deploy(ctx context.Context, c Clients, plan *Plan, opts Options) (*Stack, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	params := make([]cftypes.Parameter, 0, len(opts.Parameters))
	for _, k := range sortedKeys(opts.Parameters) {
		params = append(params, cftypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(opts.Parameters[k])})
	}
	if _, err := c.CloudFormation.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String(opts.StackName),
		TemplateBody: aws.String(plan.Body),
		Parameters:   params,
		Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityIam, cftypes.CapabilityCapabilityAutoExpand},
	}); err != nil {
		return nil, fmt.Errorf("create stack %s: %w", opts.StackName, err)
	}
	outputs, err := waitCreated(ctx, c.CloudFormation, opts.StackName, opts.Timeout)
	if err != nil {
		return nil, err
	}

	res, err := c.CloudFormation.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(opts.StackName)})
	if err != nil {
		return nil, fmt.Errorf("describe stack resources %s: %w", opts.StackName, err)
	}
	physical := map[string]string{}
	for _, r := range res.StackResources {
		if id := aws.ToString(r.LogicalResourceId); id != "" {
			physical[id] = aws.ToString(r.PhysicalResourceId)
		}
	}
	for id, out := range plan.nameOutput {
		if physical[id] == "" {
			physical[id] = outputs[out]
		}
	}

	st := &Stack{Name: opts.StackName, Outputs: map[string]string{}, QueueURLs: map[string]string{}, Env: map[string]string{}}
	// moto's queue URLs (Ref, outputs, physical ids) name AWS's host: ask the local endpoint by name instead.
	for id, typ := range plan.Types {
		if typ != "AWS::SQS::Queue" || plan.Disposition[id] != InStack {
			continue
		}
		if physical[id] == "" {
			return nil, fmt.Errorf("queue %s was not created", id)
		}
		url, err := queueURL(ctx, c.SQS, physical[id])
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", id, err)
		}
		st.QueueURLs[id] = url
	}

	if st.Completed, err = complete(ctx, c, plan, physical, outputs); err != nil {
		return nil, err
	}
	for _, a := range plan.Applied {
		filled, err := plan.fill(a.Properties, outputs)
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", a.LogicalID, err)
		}
		props, _ := filled.(map[string]any)
		id, err := apply(ctx, c, opts, a, props)
		if err != nil {
			return nil, fmt.Errorf("apply %s (%s): %w", a.LogicalID, a.Type, err)
		}
		physical[a.LogicalID] = id
	}

	for _, id := range sortedKeys(plan.Types) {
		d := plan.Disposition[id]
		p := physical[id]
		if d != Removed && p == "" && !conditionalOff(plan, id) {
			return nil, fmt.Errorf("resource %s (%s) was not created", id, plan.Types[id])
		}
		st.Resources = append(st.Resources, Resource{LogicalID: id, Type: plan.Types[id], PhysicalID: p, Disposition: d})
	}
	for name, v := range outputs {
		if !strings.HasPrefix(name, placeholderOutputPrefix) {
			st.Outputs[name] = v
		}
	}
	for name, v := range plan.envLiteral {
		st.Env[name] = v
	}
	for name, id := range plan.envApplied {
		st.Env[name] = physical[id]
	}
	for name, out := range plan.envOutput {
		v, ok := outputs[out]
		if !ok {
			return nil, fmt.Errorf("environment variable %s: stack has no output %s", name, out)
		}
		if q := plan.queueRef(plan.Environment[name]); q != "" {
			v = st.QueueURLs[q]
		}
		st.Env[name] = v
	}
	return st, nil
}

// conditionalOff says whether id is a resource with a Condition that the stack left out (e.g. AlarmTopic without
// AlarmEmail); moto lists no such resource.
func conditionalOff(plan *Plan, id string) bool {
	var t map[string]any
	if err := json.Unmarshal([]byte(plan.Body), &t); err != nil {
		return false
	}
	r, _ := t["Resources"].(map[string]any)[id].(map[string]any)
	_, ok := r["Condition"]
	return ok
}

func waitCreated(ctx context.Context, cf CloudFormationAPI, name string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describe stack %s: %w", name, err)
		}
		if len(out.Stacks) != 1 {
			return nil, fmt.Errorf("describe stack %s: %d stacks", name, len(out.Stacks))
		}
		s := out.Stacks[0]
		switch s.StackStatus {
		case cftypes.StackStatusCreateComplete:
			outputs := map[string]string{}
			for _, o := range s.Outputs {
				outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}
			return outputs, nil
		case cftypes.StackStatusCreateInProgress:
		default:
			return nil, fmt.Errorf("stack %s: %s: %s", name, s.StackStatus, aws.ToString(s.StackStatusReason))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("stack %s: still %s after %s", name, s.StackStatus, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// queueURL resolves a queue URL or name (any host) to its URL on the local endpoint.
func queueURL(ctx context.Context, q SQSAPI, urlOrName string) (string, error) {
	name := path.Base(strings.TrimRight(urlOrName, "/"))
	out, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("get queue url %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

func apply(ctx context.Context, c Clients, opts Options, a AppliedResource, props map[string]any) (string, error) {
	switch a.Type {
	case "AWS::SecretsManager::Secret":
		name, _ := props["Name"].(string)
		if name == "" {
			name = opts.StackName + "-" + a.LogicalID
		}
		value, ok := opts.SecretValues[a.LogicalID]
		if !ok {
			var err error
			if value, err = secretValue(props); err != nil {
				return "", err
			}
		}
		desc, _ := props["Description"].(string)
		out, err := c.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:         aws.String(name),
			Description:  aws.String(desc),
			SecretString: aws.String(value),
		})
		if err != nil {
			return "", fmt.Errorf("create secret %s: %w", name, err)
		}
		return aws.ToString(out.ARN), nil

	case "AWS::SQS::QueuePolicy":
		doc, err := json.Marshal(props["PolicyDocument"])
		if err != nil {
			return "", fmt.Errorf("encode policy: %w", err)
		}
		queues, _ := props["Queues"].([]any)
		if len(queues) == 0 {
			return "", errors.New("no Queues")
		}
		var urls []string
		for _, q := range queues {
			s, _ := q.(string)
			url, err := queueURL(ctx, c.SQS, s)
			if err != nil {
				return "", err
			}
			if _, err := c.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
				QueueUrl:   aws.String(url),
				Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(doc)},
			}); err != nil {
				return "", fmt.Errorf("set policy of %s: %w", url, err)
			}
			urls = append(urls, url)
		}
		return strings.Join(urls, ","), nil

	case "AWS::KMS::Key":
		return createKey(ctx, c.KMS, props)

	case "AWS::S3::BucketPolicy":
		bucket, _ := props["Bucket"].(string)
		doc, err := json.Marshal(props["PolicyDocument"])
		if err != nil {
			return "", fmt.Errorf("encode policy: %w", err)
		}
		if _, err := c.S3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(string(doc))}); err != nil {
			return "", fmt.Errorf("put policy of bucket %s: %w", bucket, err)
		}
		return bucket, nil
	}
	return "", fmt.Errorf("no local support for %s", a.Type)
}

// createKey creates a KMS key with the template's spec, usage, description and policy and returns its key id (what
// Ref gives). Properties it cannot reproduce are an error, so a template change the local stack would silently drop
// is noticed.
func createKey(ctx context.Context, api KMSAPI, props map[string]any) (string, error) {
	in := &kms.CreateKeyInput{}
	for _, k := range sortedKeys(props) {
		v := props[k]
		s, _ := v.(string)
		switch k {
		case "Description":
			in.Description = aws.String(s)
		case "KeySpec":
			in.KeySpec = kmstypes.KeySpec(s)
		case "KeyUsage":
			in.KeyUsage = kmstypes.KeyUsageType(s)
		case "KeyPolicy":
			if s == "" {
				doc, err := json.Marshal(v)
				if err != nil {
					return "", fmt.Errorf("encode key policy: %w", err)
				}
				s = string(doc)
			}
			in.Policy = aws.String(s)
		case "PendingWindowInDays": // deletion only
		default:
			return "", fmt.Errorf("key property %s has no local equivalent yet (shared/local/localstack/deploy.go)", k)
		}
	}
	out, err := api.CreateKey(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId), nil
}

// secretValue is the SecretString of a secret, or one generated as its GenerateSecretString says.
func secretValue(props map[string]any) (string, error) {
	if s, ok := props["SecretString"].(string); ok {
		return s, nil
	}
	g, _ := props["GenerateSecretString"].(map[string]any)
	length := 32
	if n, ok := g["PasswordLength"].(int); ok && n > 0 {
		length = n
	}
	pw, err := randomString(length)
	if err != nil {
		return "", err
	}
	tmpl, _ := g["SecretStringTemplate"].(string)
	key, _ := g["GenerateStringKey"].(string)
	if tmpl == "" || key == "" {
		return pw, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(tmpl), &m); err != nil {
		return "", fmt.Errorf("SecretStringTemplate: %w", err)
	}
	m[key] = pw
	b, err := json.Marshal(m)
	return string(b), err
}

func randomString(n int) (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

// EnvFile is the content of .local/stack.env: the Lambda environment with the local values, every queue's URL
// (ANALYSIS_DLQ_URL, REPORT_QUEUE_URL, ...), and the AWS settings that point an SDK at the local endpoint.
func EnvFile(st *Stack, endpoint, region string) string {
	env := map[string]string{}
	for k, v := range st.Env {
		env[k] = v
	}
	for id, url := range st.QueueURLs {
		if k := snake(id) + "_URL"; env[k] == "" {
			env[k] = url
		}
	}
	env["STACK_NAME"] = st.Name
	env["AWS_ENDPOINT_URL"] = endpoint
	env["AWS_REGION"] = region
	env["AWS_DEFAULT_REGION"] = region
	env["AWS_ACCESS_KEY_ID"] = "test"
	env["AWS_SECRET_ACCESS_KEY"] = "test"
	keys := sortedKeys(env)
	var b strings.Builder
	b.WriteString("# Written by cmd/localstack (infra/local-stack.sh up): the local stack in moto. Do not edit.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(env[k]))
	}
	return b.String()
}

// WriteEnvFile writes EnvFile to path, creating its folder.
func WriteEnvFile(path string, st *Stack, endpoint, region string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	if err := os.WriteFile(path, []byte(EnvFile(st, endpoint, region)), 0o644); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	return nil
}

func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_./:,@+=%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// snake turns a logical id into an environment variable name: AnalysisDLQ -> ANALYSIS_DLQ.
func snake(id string) string {
	var b strings.Builder
	rs := []rune(id)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// Describe is a table of the stack's resources for a person.
func Describe(st *Stack) string {
	var b strings.Builder
	rs := append([]Resource(nil), st.Resources...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Disposition < rs[j].Disposition })
	for _, r := range rs {
		p := r.PhysicalID
		if p == "" {
			p = "-"
		}
		fmt.Fprintf(&b, "%-8s %-28s %-30s %s\n", r.Disposition, r.LogicalID, r.Type, p)
	}
	if len(st.Completed) > 0 {
		fmt.Fprintf(&b, "applied after the stack (moto's CloudFormation ignores them): %s\n", strings.Join(st.Completed, ", "))
	}
	return b.String()
}
