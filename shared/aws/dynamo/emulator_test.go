package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
)

// The integration tests run against two real emulators: moto (MOTO_ENDPOINT)
// and DynamoDB Local (DYNAMODB_LOCAL_ENDPOINT). When the variable is unset the
// test starts the emulator itself on a free loopback port, through
// infra/moto.sh run and infra/dynamodb-local.sh run (which installs DynamoDB
// Local on first use), and stops it when the tests end. A test skips only
// when the emulator's runtime (moto_server, java) is missing.

// emulator is one local DynamoDB endpoint, started at most once per test binary.
type emulator struct {
	name    string // test name
	env     string // variable naming a running one
	script  string // under infra/
	portEnv string // variable telling the script its port
	needs   string // the program whose absence means skip
	// serialize sends it one request at a time (see serialized).
	serialize bool
	// noCRC turns off the client's check of X-Amz-Crc32: DynamoDB Local's
	// error responses (a failed condition) carry a CRC the SDK cannot match
	// on an unread body, and every such response logs a warning.
	noCRC bool

	once     sync.Once
	endpoint string
	skip     string
	err      error
	cmd      *exec.Cmd
	log      syncBuffer
}

// syncBuffer is the emulator's output, written by exec's copying goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var emulators = []*emulator{
	{name: "moto", env: "MOTO_ENDPOINT", script: "moto.sh", portEnv: "MOTO_PORT", needs: "moto_server", serialize: true},
	{name: "dynamodb-local", env: "DYNAMODB_LOCAL_ENDPOINT", script: "dynamodb-local.sh", portEnv: "DYNAMODB_LOCAL_PORT", needs: "java", noCRC: true},
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, e := range emulators {
		e.stop()
	}
	os.Exit(code)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (e *emulator) start() {
	if ep := os.Getenv(e.env); ep != "" {
		e.endpoint = ep
		return
	}
	if _, err := exec.LookPath(e.needs); err != nil {
		e.skip = fmt.Sprintf("%s unavailable: %s not on PATH and %s unset", e.name, e.needs, e.env)
		return
	}
	root, err := repoRoot()
	if err != nil {
		e.err = err
		return
	}
	port, err := freePort()
	if err != nil {
		e.err = err
		return
	}
	// The script execs the server, so cmd.Process is the server itself.
	e.cmd = exec.Command("bash", filepath.Join(root, "infra", e.script), "run")
	e.cmd.Env = append(os.Environ(), e.portEnv+"="+strconv.Itoa(port))
	e.cmd.Stdout, e.cmd.Stderr = &e.log, &e.log
	dieWithParent(e.cmd)
	if err := e.cmd.Start(); err != nil {
		e.err = fmt.Errorf("start %s: %w", e.name, err)
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- e.cmd.Wait() }()
	e.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	api := client(e.endpoint, e.noCRC)
	deadline := time.Now().Add(120 * time.Second) // a first DynamoDB Local run fetches the jar
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := api.ListTables(ctx, &dynamodb.ListTablesInput{})
		cancel()
		if err == nil {
			return
		}
		select {
		case werr := <-exited:
			e.err = fmt.Errorf("%s exited (%v):\n%s", e.name, werr, e.log.String())
			e.cmd = nil
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.err = fmt.Errorf("%s not ready on %s: %v\n%s", e.name, e.endpoint, err, e.log.String())
			return
		}
	}
}

func (e *emulator) stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
	}
}

// clientConfig is the SDK configuration of the local clients: a region and
// fake credentials.
func clientConfig() aws.Config {
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	)
	if err != nil {
		panic(err) // static options only: cannot fail but for a broken environment
	}
	return cfg
}

// client is a DynamoDB client for a local endpoint, with fake credentials.
func client(endpoint string, noCRC bool) *dynamodb.Client {
	return dynamodb.NewFromConfig(clientConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = noCRC
	})
}

// testAPI is what the tests call: the Store's port, the table's, and a few more.
type testAPI interface {
	dynamo.API
	dynamo.TableAPI
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
}

// serialized sends one request at a time. moto's server handles requests on
// concurrent threads without isolating them, so two conditional writes of
// one item can both pass their condition (seen: a fan-in counting 31 of 30
// batches, or losing an increment). DynamoDB applies each request to an item
// atomically; one request at a time gives moto that guarantee, while the
// goroutines of a test still interleave their multi-request operations.
// DynamoDB Local needs no such help.
type serialized struct {
	mu  sync.Mutex
	api testAPI
}

func lock[In, Out any](s *serialized, f func(context.Context, In, ...func(*dynamodb.Options)) (Out, error), ctx context.Context, in In, opts []func(*dynamodb.Options)) (Out, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(ctx, in, opts...)
}

func (s *serialized) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return lock(s, s.api.GetItem, ctx, in, o)
}
func (s *serialized) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return lock(s, s.api.PutItem, ctx, in, o)
}
func (s *serialized) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return lock(s, s.api.UpdateItem, ctx, in, o)
}
func (s *serialized) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return lock(s, s.api.Query, ctx, in, o)
}
func (s *serialized) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return lock(s, s.api.BatchGetItem, ctx, in, o)
}
func (s *serialized) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return lock(s, s.api.BatchWriteItem, ctx, in, o)
}
func (s *serialized) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return lock(s, s.api.TransactWriteItems, ctx, in, o)
}
func (s *serialized) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return lock(s, s.api.CreateTable, ctx, in, o)
}
func (s *serialized) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return lock(s, s.api.DescribeTable, ctx, in, o)
}
func (s *serialized) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	return lock(s, s.api.UpdateTimeToLive, ctx, in, o)
}
func (s *serialized) DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error) {
	return lock(s, s.api.DeleteTable, ctx, in, o)
}

// ready starts the emulator on first use, and skips or fails tb when it
// cannot serve.
func (e *emulator) ready(tb testing.TB) {
	tb.Helper()
	e.once.Do(e.start)
	if e.skip != "" {
		tb.Skip(e.skip)
	}
	if e.err != nil {
		tb.Fatal(e.err)
	}
}

// forEach runs fn as a subtest per emulator, each given a client.
// forEachEmulator runs fn against each emulator that is ready, for tests
// that build their own client.
func forEachEmulator(t *testing.T, fn func(t *testing.T, e *emulator)) {
	for _, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			e.ready(t)
			fn(t, e)
		})
	}
}

func forEach(t *testing.T, fn func(t *testing.T, api testAPI)) {
	for _, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			e.ready(t)
			var api testAPI = client(e.endpoint, e.noCRC)
			if e.serialize {
				api = &serialized{api: api}
			}
			fn(t, api)
		})
	}
}

var tableSeq atomic.Int64

// mustTable creates a fresh audit table for one test.
func mustTable(tb testing.TB, api testAPI) string {
	tb.Helper()
	name := fmt.Sprintf("audit-%d-%d", time.Now().UnixNano(), tableSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dynamo.CreateTable(ctx, api, name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _, _ = api.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
	return name
}

// MustStore returns a Store on a fresh table.
func MustStore(tb testing.TB, api testAPI, opts dynamo.Options) *dynamo.Store {
	tb.Helper()
	return dynamo.New(api, mustTable(tb, api), opts)
}
