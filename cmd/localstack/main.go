// Command localstack deploys the real template.yaml into a local moto server (no Docker, no SAM CLI, no aws CLI)
// and writes the names of what it created to an env file (.local/stack.env) for the functions and the tests.
// The deployment itself is shared/local/localstack.
//
//	go run ./cmd/localstack -endpoint http://127.0.0.1:5055 -env-file .local/stack.env
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/localstack"
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
	if err := localstack.WaitReady(ctx, *endpoint, *wait); err != nil {
		return err
	}
	st, err := localstack.DeployFile(ctx, *endpoint, *region, *templatePath,
		localstack.Options{StackName: *stackName, Parameters: params, SecretValues: secrets, Timeout: *wait})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stack %s on %s:\n%s", st.Name, *endpoint, localstack.Describe(st))
	if *envPath != "" {
		if err := localstack.WriteEnvFile(*envPath, st, *endpoint, *region); err != nil {
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
