// Command localstack deploys the real template.yaml into a local moto server (no Docker, no SAM CLI, no aws CLI)
// and writes the names of what it created to an env file (.local/stack.env) for the functions and the tests.
//
// moto runs no SAM transform and its CloudFormation lacks some types, so the template is prepared first (see
// Prepare): the functions, their HTTP API and roles, and the alarms are left out; secrets, the queue policy and the
// bucket policy are created through their service APIs from the template's own properties; everything else (table,
// queues, bus, rule, bucket, log groups) is created by moto's CloudFormation from the template as written.
//
//	go run ./cmd/localstack -endpoint http://127.0.0.1:5055 -env-file .local/stack.env
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localstack:", err)
		os.Exit(1)
	}
}

type keyValues map[string]string

func (kv keyValues) String() string { return fmt.Sprint(map[string]string(kv)) }

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", s)
	}
	kv[k] = v
	return nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("localstack", flag.ContinueOnError)
	endpoint := fs.String("endpoint", envOr("AWS_ENDPOINT_URL", "http://127.0.0.1:5055"), "moto server URL")
	region := fs.String("region", envOr("AWS_REGION", "us-east-1"), "AWS region")
	templatePath := fs.String("template", "template.yaml", "SAM template to deploy")
	stackName := fs.String("stack", "billing-audit-local", "stack name")
	envPath := fs.String("env-file", ".local/stack.env", "where to write the stack's names (empty: don't)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the endpoint to answer, and then for the stack")
	params := keyValues{"Stage": "dev"}
	secrets := keyValues{}
	fs.Var(params, "param", "template parameter KEY=VALUE (repeatable)")
	fs.Var(secrets, "secret", "secret value LOGICALID=VALUE (repeatable; default: generated as the template says)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	src, err := os.ReadFile(*templatePath)
	if err != nil {
		return err
	}
	tmpl, err := ParseTemplate(src)
	if err != nil {
		return err
	}
	plan, err := Prepare(tmpl)
	if err != nil {
		return err
	}
	if err := WaitReady(ctx, *endpoint, *wait); err != nil {
		return err
	}
	clients, err := NewClients(ctx, *endpoint, *region)
	if err != nil {
		return err
	}
	st, err := Deploy(ctx, clients, plan, Options{StackName: *stackName, Parameters: params, SecretValues: secrets, Timeout: *wait})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stack %s on %s:\n%s", st.Name, *endpoint, Describe(st))
	if *envPath != "" {
		if err := WriteEnvFile(*envPath, st, *endpoint, *region); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *envPath)
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// NewClients builds one AWS config for the local endpoint (fixed test credentials) and the clients from it.
func NewClients(ctx context.Context, endpoint, region string) (Clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	)
	if err != nil {
		return Clients{}, fmt.Errorf("aws config: %w", err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	return Clients{
		CloudFormation: cloudformation.NewFromConfig(cfg),
		SQS:            sqs.NewFromConfig(cfg),
		S3:             s3c,
		S3Settings:     s3c,
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		DynamoDB:       dynamodb.NewFromConfig(cfg),
	}, nil
}

// WaitReady waits until the moto server answers on endpoint (its /moto-api/ dashboard), or timeout.
func WaitReady(ctx context.Context, endpoint string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/moto-api/data.json", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.Join(fmt.Errorf("%s did not answer within %s", endpoint, timeout), last)
}
