// Package localstack deploys the real template.yaml into a local moto server (no Docker, no SAM CLI, no aws CLI)
// and describes what it created: the names the functions and the tests need (.local/stack.env).
//
// moto runs no SAM transform and its CloudFormation lacks some types, so the template is prepared first (see
// Prepare): the functions, their HTTP API and roles, the alarms and the bucket policies are left out; secrets, the queue
// policy and the KMS key are created through their service APIs from the template's own properties; everything else
// (table, queues, bus, rule, buckets, log groups) is created by moto's CloudFormation from the template as written, and
// the properties it ignores are applied after it (see completions).
// cmd/localstack is its command line; tests call localstacktest.StartMoto and DeployFile.
package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

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
		KMS:            kms.NewFromConfig(cfg),
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

// DeployFile parses and prepares the template at path and deploys it into the moto at endpoint.
func DeployFile(ctx context.Context, endpoint, region, path string, opts Options) (*Stack, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tmpl, err := ParseTemplate(src)
	if err != nil {
		return nil, err
	}
	plan, err := Prepare(tmpl)
	if err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, endpoint, 30*time.Second); err != nil {
		return nil, err
	}
	clients, err := NewClients(ctx, endpoint, region)
	if err != nil {
		return nil, err
	}
	return Deploy(ctx, clients, plan, opts)
}

// ParseEnvFile reads the KEY=VALUE lines EnvFile writes (single-quoted values unquoted).
func ParseEnvFile(content string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(content, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		env[k] = v
	}
	return env
}

// ErrNoMoto says moto_server is not installed (pip install 'moto[server]').
var ErrNoMoto = errors.New("moto_server not found (pip install 'moto[server]')")

// Process is an emulator started by RunMoto or RunDynamoDBLocal.
type Process struct {
	// URL is its endpoint on a loopback port.
	URL    string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{} // closed when the process has exited
}

// Moto is a moto_server process started by RunMoto.
type Moto = Process

// start starts cmd with its output kept, and notes when it exits.
func start(name string, cmd *exec.Cmd, url string) (*Process, error) {
	p := &Process{URL: url, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// freeURL is the URL of a free loopback port.
func freeURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return fmt.Sprintf("http://127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port), nil
}

// ErrNoJava says java is not installed: DynamoDB Local needs it.
var ErrNoJava = errors.New("java not found (DynamoDB Local needs Java 11+: apt-get install openjdk-17-jre-headless)")

// RunDynamoDBLocal starts DynamoDB Local (infra/dynamodb-local.sh run under
// moduleRoot, which fetches it into .local on first use) on a free loopback
// port and waits until it answers a DynamoDB request. Tests use
// localstacktest.StartDynamoDBLocal, which stops it with the test.
func RunDynamoDBLocal(ctx context.Context, moduleRoot string) (*Process, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, ErrNoJava
	}
	url, err := freeURL()
	if err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	// The script execs java, so the command's process is the server itself.
	cmd := exec.Command("bash", filepath.Join(moduleRoot, "infra", "dynamodb-local.sh"), "run")
	cmd.Env = append(os.Environ(), "DYNAMODB_LOCAL_PORT="+url[strings.LastIndex(url, ":")+1:])
	p, err := start("DynamoDB Local", cmd, url)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute) // a first use fetches the jar
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		// Any DynamoDB answer, even a refusal, means it is serving.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
		if err != nil {
			p.Stop()
			return nil, err
		}
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("start DynamoDB Local: it exited:\n%s", p.Logs(8<<10))
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("start DynamoDB Local: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("start DynamoDB Local: not answering on %s after 2 minutes:\n%s", url, p.Logs(8<<10))
		}
	}
}

// RunMoto starts moto_server on a free loopback port and waits until it
// answers. Tests use localstacktest.StartMoto, which stops it with the test.
func RunMoto(ctx context.Context) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrNoMoto
	}
	url, err := freeURL()
	if err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m, err := start("moto_server", exec.Command(bin, "-H", "127.0.0.1", "-p", url[strings.LastIndex(url, ":")+1:]), url)
	if err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, m.URL, 30*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("start moto_server: %w\n%s", err, m.Logs(8<<10))
	}
	return m, nil
}

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Logs is the end of the process's output, up to n bytes.
func (p *Process) Logs(n int) string { return p.logs.tail(n) }

// syncBuffer is a bytes.Buffer safe for the process's writers and the test's reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
