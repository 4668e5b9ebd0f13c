// Package testproc builds the tiercel binary once per test binary and runs
// brokers as real processes, so tests can kill -9 and SIGSTOP them.
package testproc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a freshly built tiercel binary. It builds
// with the race detector when the test binary has it.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("TIERCEL_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "tiercel-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tiercel")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tiercel")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is one broker process.
type Proc struct {
	t    testing.TB
	Args []string
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Start runs `tiercel serve --listen addr args...` and waits until the
// port accepts connections. The process is killed at test cleanup, and its
// output is logged if the test failed.
func Start(t testing.TB, addr string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Addr: addr, Args: args}
	p.start()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("broker %s output:\n%s", addr, p.Output())
		}
	})
	return p
}

func (p *Proc) start() {
	p.t.Helper()
	if p.out == nil {
		p.out = &syncBuffer{b: &bytes.Buffer{}}
	}
	sb := p.out
	// A free metrics port, so that brokers of parallel tests never clash
	// on the default; a test that scrapes passes its own.
	args := append([]string{"serve", "--listen", p.Addr, "--metrics-listen", "127.0.0.1:0"}, p.Args...)
	p.cmd = exec.Command(Binary(p.t), args...)
	p.cmd.Stdout, p.cmd.Stderr = sb, sb
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(p.cmd, p.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("broker exited during start-up:\n%s", p.Output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("broker did not listen on %s within 30s:\n%s", p.Addr, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output returns what the process printed so far.
func (p *Proc) Output() string {
	if p.out == nil {
		return ""
	}
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.b.String()
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to 30s for a clean exit.
func (p *Proc) Stop() error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if st := p.cmd.ProcessState; st != nil && !st.Success() {
			return fmt.Errorf("broker exited with %v", st)
		}
		return nil
	case <-time.After(30 * time.Second):
		p.Kill()
		return fmt.Errorf("broker did not stop within 30s")
	}
}

// Signal sends sig (SIGSTOP, SIGCONT, ...).
func (p *Proc) Signal(sig syscall.Signal) { p.signal(sig) }

func (p *Proc) signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Restart starts the process again with the same arguments, after it exited.
func (p *Proc) Restart() {
	p.t.Helper()
	<-p.done
	p.start()
}
