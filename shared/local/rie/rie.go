// Package rie runs a Lambda bootstrap under the AWS Lambda Runtime Interface Emulator (aws-lambda-rie), one emulator
// process per function on its own loopback ports, and invokes it through the emulator's Invoke API. It stands in for
// the Lambda service locally: the bootstrap is the real one `make lambdas` builds, configured by environment variables
// exactly as template.yaml configures it in AWS.
//
// The emulator starts the bootstrap on the first invoke and serves one invoke at a time. Its REPORT lines are not
// measurements: "Init Duration" times only the emulator's own init call (well under a millisecond) and "Max Memory
// Used" repeats the configured memory size. Time the first invoke instead, and read PeakRSS (the bootstrap's VmHWM).
package rie

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Module is the emulator's Go package at the version the project uses.
const Module = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// InvokePath is the emulator's Invoke API path (the function is always named "function").
const InvokePath = "/2015-03-31/functions/function/invocations"

// Find returns the path of aws-lambda-rie: $AWS_LAMBDA_RIE, else on PATH, else in $(go env GOPATH)/bin.
func Find() (string, error) {
	if p := os.Getenv("AWS_LAMBDA_RIE"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("find aws-lambda-rie: go env GOPATH: %w", err)
	}
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(dir, "bin", "aws-lambda-rie")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("aws-lambda-rie not found (go install " + Module + ")")
}

// Ensure returns aws-lambda-rie, installing it with `go install` when it is missing.
func Ensure(ctx context.Context) (string, error) {
	if p, err := Find(); err == nil {
		return p, nil
	}
	cmd := exec.CommandContext(ctx, "go", "install", Module)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", Module, err, out)
	}
	return Find()
}

// Config describes one function.
type Config struct {
	// Name is the function's name (AWS_LAMBDA_FUNCTION_NAME), e.g. "analyze".
	Name string
	// Bootstrap is the path of the function's bootstrap executable.
	Bootstrap string
	// Emulator is the path of aws-lambda-rie (default: Find).
	Emulator string
	// Env are the function's variables (KEY=VALUE). The emulator forwards its whole environment to the function, so
	// it is started with PATH, HOME and these only.
	Env []string
	// Timeout is the function's timeout (AWS_LAMBDA_FUNCTION_TIMEOUT; default 300 s).
	Timeout time.Duration
	// MemoryMB is the memory size reported (AWS_LAMBDA_FUNCTION_MEMORY_SIZE; default 512).
	MemoryMB int
	// Output also receives the emulator's and the function's output (default: kept in Logs only).
	Output io.Writer
}

// Function is a bootstrap running under its own emulator process.
type Function struct {
	cfg     Config
	addr    string // Invoke API, 127.0.0.1:port
	apiAddr string // Runtime API, 127.0.0.1:port

	invokeMu sync.Mutex // one invoke at a time, like the emulator

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	started time.Time
	logs    logBuffer
}

// Start starts the emulator for cfg on two free loopback ports and waits until it accepts invokes.
func Start(ctx context.Context, cfg Config) (*Function, error) {
	if cfg.Emulator == "" {
		p, err := Find()
		if err != nil {
			return nil, err
		}
		cfg.Emulator = p
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 300 * time.Second
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 512
	}
	if _, err := os.Stat(cfg.Bootstrap); err != nil {
		return nil, fmt.Errorf("function %s: %w", cfg.Name, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	f := &Function{cfg: cfg, addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), apiAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	if err := f.start(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (f *Function) start(ctx context.Context) error {
	abs, err := filepath.Abs(f.cfg.Bootstrap)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.cfg.Emulator,
		"--runtime-interface-emulator-address", f.addr,
		"--runtime-api-address", f.apiAddr,
		"--log-level", "warn",
		abs)
	cmd.Dir = filepath.Dir(abs)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_NAME=" + f.cfg.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(f.cfg.Timeout/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(f.cfg.MemoryMB),
	}, f.cfg.Env...)
	var w io.Writer = &f.logs
	if f.cfg.Output != nil {
		w = io.MultiWriter(&f.logs, f.cfg.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group, so that Kill takes the bootstrap down with the emulator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s under aws-lambda-rie: %w", f.cfg.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	f.mu.Lock()
	f.cmd, f.exited, f.started = cmd, exited, started
	f.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", f.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("aws-lambda-rie for %s exited at start:\n%s", f.cfg.Name, f.logs.String())
		case <-ctx.Done():
			f.Kill()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.Kill()
			return fmt.Errorf("aws-lambda-rie for %s not listening on %s after 10s", f.cfg.Name, f.addr)
		}
	}
}

// Name is the function's name.
func (f *Function) Name() string { return f.cfg.Name }

// Endpoint is the emulator's root URL, what `aws lambda invoke --endpoint-url` takes.
func (f *Function) Endpoint() string { return "http://" + f.addr }

// StartedAt is when the current emulator process was started.
func (f *Function) StartedAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started
}

// FunctionError is an error the function returned (the runtime's error response).
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Invoke invokes the function with payload and returns its response. A function error is a *FunctionError; an
// emulator that dies during the invoke (Kill) gives a transport error.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	f.invokeMu.Lock()
	defer f.invokeMu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.Endpoint()+InvokePath, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: f.cfg.Timeout + 10*time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.cfg.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read response: %w", f.cfg.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoke %s: status %s: %s", f.cfg.Name, resp.Status, bytes.TrimSpace(body))
	}
	var fe FunctionError
	if json.Unmarshal(body, &fe) == nil && fe.Type != "" && fe.Message != "" {
		return body, &fe
	}
	return body, nil
}

// Kill ends the emulator and the bootstrap at once (SIGKILL to the process group), as a crashed or timed-out
// execution environment ends.
func (f *Function) Kill() {
	f.mu.Lock()
	cmd, exited := f.cmd, f.exited
	f.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	// The emulator starts the bootstrap in a process group of its own: kill both.
	if pid := f.BootstrapPID(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Restart kills the emulator and starts a fresh one (a cold start) on the same ports.
func (f *Function) Restart(ctx context.Context) error {
	f.Kill()
	return f.start(ctx)
}

// Stop ends the emulator.
func (f *Function) Stop() { f.Kill() }

// Logs returns everything the emulator and the function wrote so far.
func (f *Function) Logs() string { return f.logs.String() }

// LogLen is the current length of Logs, an offset for WaitLog.
func (f *Function) LogLen() int { return f.logs.Len() }

// WaitLog waits until the output after offset contains substr.
func (f *Function) WaitLog(ctx context.Context, offset int, substr string) error {
	for {
		if strings.Contains(f.logs.From(offset), substr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %q in %s's output: %w", substr, f.cfg.Name, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// BootstrapPID is the process id of the running bootstrap (the emulator's child), 0 before the first invoke.
func (f *Function) BootstrapPID() int {
	f.mu.Lock()
	cmd := f.cmd
	f.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	pid := cmd.Process.Pid
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				return n
			}
		}
	}
	return 0
}

// PeakRSS is the bootstrap process's peak resident set size (VmHWM in /proc/<pid>/status, Linux only).
func (f *Function) PeakRSS() (int64, error) {
	pid := f.BootstrapPID()
	if pid == 0 {
		return 0, errors.New("no bootstrap process")
	}
	file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// logBuffer collects output for Logs and WaitLog.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *logBuffer) From(offset int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if offset > len(s) {
		return ""
	}
	return s[offset:]
}
