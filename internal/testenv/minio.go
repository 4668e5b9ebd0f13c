// Package testenv starts the external servers Tiercel's tests run against.
// For now that is MinIO, built from source at a pinned version by
// scripts/install-minio.sh and run on a loopback port.
//
// A test that needs MinIO and cannot have it fails, with the reason; it
// never skips, so a broken harness cannot pass as a green run.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Fixed credentials of every test MinIO. They only ever guard a server on
// 127.0.0.1 with throwaway data.
const (
	MinIOAccessKey = "tiercel-test"
	MinIOSecretKey = "tiercel-test-secret"
	MinIORegion    = "us-east-1"
)

// MinIOServer is one test's view of a MinIO server: where it listens, how
// to log in, and a bucket of its own.
type MinIOServer struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Region is the region clients should sign for.
	Region string
	// Bucket is a fresh, empty bucket created for this test.
	Bucket string

	proc   *minioProc
	shared bool
}

// shared is the MinIO process of this test binary. Starting MinIO takes a
// few seconds, so tests share one and isolate themselves by bucket.
var shared struct {
	once sync.Once
	proc *minioProc
	err  error
}

// MinIO returns a MinIO server shared by all tests of the test binary,
// with a new bucket for t. The server runs until the test binary exits
// (Main removes its data directory then). Do not Stop it; a test that
// needs an outage uses MinIODedicated.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "tiercel-minio-shared-")
		if err != nil {
			shared.err = err
			return
		}
		shared.proc, shared.err = startMinIO(dir)
	})
	if shared.err != nil {
		t.Fatalf("testenv: MinIO is required and could not be started: %v", shared.err)
	}
	s := &MinIOServer{proc: shared.proc, shared: true}
	s.init(t)
	return s
}

// MinIODedicated starts a MinIO process for t alone, with a new bucket,
// and stops it when t ends. Stop and Start on it simulate an outage.
func MinIODedicated(t testing.TB) *MinIOServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "tiercel-minio-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p, err := startMinIO(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("testenv: MinIO is required and could not be started: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: MinIO log tail:\n%s", p.logTail())
		}
		p.stop()
		_ = os.RemoveAll(dir)
	})
	s := &MinIOServer{proc: p}
	s.init(t)
	return s
}

// Main runs the tests of a package that uses MinIO, then stops the shared
// server and removes its data. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Without it the shared server still dies with the test binary (it is
// started with a parent-death signal), but its temporary directory stays.
func Main(m *testing.M) {
	code := m.Run()
	if shared.proc != nil {
		shared.proc.stop()
		_ = os.RemoveAll(shared.proc.dir)
	}
	os.Exit(code)
}

func (s *MinIOServer) init(t testing.TB) {
	t.Helper()
	s.Endpoint = "http://" + s.proc.addr
	s.AccessKey, s.SecretKey, s.Region = MinIOAccessKey, MinIOSecretKey, MinIORegion
	s.Bucket = s.NewBucket(t)
}

// NewBucket creates another empty bucket and returns its name. It is
// removed, with its objects, when t ends (if the server is still up).
func (s *MinIOServer) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	var err error
	// Just after start MinIO may still refuse requests while it
	// initializes; give it a few tries.
	for range 20 {
		if err = c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testenv: creating bucket %s: %v\nMinIO log tail:\n%s", name, err, s.proc.logTail())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !s.proc.running() {
			return
		}
		// Best effort: the data directory goes away with the server.
		_ = c.RemoveBucketWithOptions(ctx, name, minio.RemoveBucketOptions{ForceDelete: true})
	})
	return name
}

// bucketName turns a test name into a valid, unique bucket name.
func bucketName(testName string) string {
	var b strings.Builder
	b.WriteString("t-")
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 44 {
		name = strings.TrimRight(name[:44], "-")
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	return name + "-" + hex.EncodeToString(suffix[:])
}

// Client returns a minio-go client for the server: a client independent
// of Tiercel's own S3 code, to check what it stored.
func (s *MinIOServer) Client() *minio.Client {
	c, err := minio.New(s.proc.addr, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
		Region: s.Region,
	})
	if err != nil {
		// minio.New only fails on a malformed endpoint, which ours
		// never is.
		panic(fmt.Sprintf("testenv: minio client for %s: %v", s.proc.addr, err))
	}
	return c
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s). Only for a
// dedicated server: stopping the shared one would fail other tests.
func (s *MinIOServer) Stop(t testing.TB) {
	t.Helper()
	if s.shared {
		t.Fatal("testenv: Stop on the shared MinIO; use MinIODedicated for outage tests")
	}
	s.proc.stop()
}

// Start starts a stopped server again on the same port and data
// directory, and waits until it is ready.
func (s *MinIOServer) Start(t testing.TB) {
	t.Helper()
	if s.shared {
		t.Fatal("testenv: Start on the shared MinIO; use MinIODedicated for outage tests")
	}
	if err := s.proc.start(); err != nil {
		t.Fatalf("testenv: restarting MinIO: %v", err)
	}
}

// minioProc is one MinIO process and what is needed to restart it.
type minioProc struct {
	bin  string
	dir  string // holds data/ and minio.log
	addr string // 127.0.0.1:PORT

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startMinIO finds the binary, picks a port and starts MinIO in dir. A
// port picked free can be taken before MinIO binds it, so it tries again
// on another port a few times.
func startMinIO(dir string) (*minioProc, error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p := &minioProc{bin: bin, dir: dir, addr: addr}
		err = p.start()
		if err == nil {
			return p, nil
		}
		if try == 2 {
			return nil, err
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// minioBinary returns the MinIO server to run: $TIERCEL_MINIO_BIN if set,
// else what scripts/install-minio.sh builds or has cached.
func minioBinary() (string, error) {
	if bin := os.Getenv("TIERCEL_MINIO_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("TIERCEL_MINIO_BIN: %w", err)
		}
		return bin, nil
	}
	script, err := installScript()
	if err != nil {
		// Without the repository, fall back to a previous build.
		if bin, cerr := cachedBinary(); cerr == nil {
			return bin, nil
		}
		return "", err
	}
	cmd := exec.Command("bash", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed: %w\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	bin := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s printed %q, which is not a file: %w", script, bin, err)
	}
	return bin, nil
}

// installScript finds scripts/install-minio.sh in the repository this
// package was built from, or above the working directory.
func installScript() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, d := range starts {
		for {
			p := filepath.Join(d, "scripts", "install-minio.sh")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", errors.New("scripts/install-minio.sh not found; set TIERCEL_MINIO_BIN to a MinIO server binary")
}

func cachedBinary() (string, error) {
	cache := os.Getenv("TIERCEL_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "tiercel")
	}
	bin := filepath.Join(cache, "bin", "minio")
	_, err := os.Stat(bin)
	return bin, err
}

// start runs MinIO and waits until its liveness probe answers.
func (p *minioProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("MinIO is already running")
	}
	data := filepath.Join(p.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	consoleAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, "server", "--quiet", "--address", p.addr, "--console-address", consoleAddr, data)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+MinIOAccessKey,
		"MINIO_ROOT_PASSWORD="+MinIOSecretKey,
		"MINIO_REGION="+MinIORegion,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		// Allows a data directory on the root disk, as in CI.
		"MINIO_CI_CD=on",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies without cleaning up, the kernel kills
	// MinIO too. The signal follows the thread that started the child,
	// so that thread must live as long as the process: see runLocked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	go runLocked(cmd, started, done)
	if err := <-started; err != nil {
		return fmt.Errorf("starting %s: %w", p.bin, err)
	}
	p.cmd, p.done = cmd, done
	if err := p.waitReady(60 * time.Second); err != nil {
		p.stopLocked()
		return fmt.Errorf("MinIO on %s did not become ready: %w\nlog tail:\n%s", p.addr, err, p.logTail())
	}
	return nil
}

// runLocked starts cmd from a goroutine locked to its OS thread and waits
// for it there, so the thread, whose exit would trigger Pdeathsig, lives
// exactly as long as the child.
func runLocked(cmd *exec.Cmd, started chan<- error, done chan<- struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(done)
	if err := cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	_ = cmd.Wait()
}

func (p *minioProc) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + p.addr + "/minio/health/live"
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return errors.New("MinIO exited")
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %v: %w", timeout, last)
}

func (p *minioProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

func (p *minioProc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *minioProc) stopLocked() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd, p.done = nil, nil
}

// logTail returns the last lines MinIO logged, for failure messages.
func (p *minioProc) logTail() string {
	f, err := os.Open(filepath.Join(p.dir, "minio.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 40 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
