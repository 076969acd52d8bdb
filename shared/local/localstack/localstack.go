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

// Moto is a moto_server process started by RunMoto.
type Moto struct {
	// URL is its endpoint on a loopback port.
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
}

// RunMoto starts moto_server on a free loopback port and waits until it
// answers. Tests use localstacktest.StartMoto, which stops it with the test.
func RunMoto(ctx context.Context) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrNoMoto
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}}
	m.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	if err := WaitReady(ctx, m.URL, 30*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("start moto_server: %w\n%s", err, m.Logs(8<<10))
	}
	return m, nil
}

// Stop kills the process and waits for it.
func (m *Moto) Stop() {
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// Logs is the end of the process's output, up to n bytes.
func (m *Moto) Logs(n int) string { return m.logs.tail(n) }

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
