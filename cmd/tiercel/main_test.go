package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTopLevelHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, sub := range []string{"serve", "bench", "inspect", "cost"} {
		if !strings.Contains(out.String(), "tiercel "+sub) && !strings.Contains(out.String(), "tiercel ["+sub) {
			t.Errorf("top-level help does not mention %s:\n%s", sub, out.String())
		}
	}
}

func TestBadFlagsAndSettingsExitTwo(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"serve", "--bogus"},
		{"serve", "--data-dir", dir, "--override", "log.segment.bytes=abc"},
		{"serve", "--data-dir", dir, "--override", "no.such.setting=1"},
		{"serve", "--data-dir", dir, "--listen", "nonsense"},
		{"serve", "--data-dir", dir, "--join", "127.0.0.1:1"},
		{"serve", "--data-dir", dir, "--metrics-listen", "", "--pprof"},
		{"nosuchcommand"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
		name := strings.TrimLeft(args[len(args)-1], "-")
		if k, _, ok := strings.Cut(name, "="); ok {
			name = k
		}
		if args[0] == "serve" && !strings.Contains(errb.String(), strings.Split(name, ":")[0]) && !strings.Contains(errb.String(), "bogus") && !strings.Contains(errb.String(), "--join") && !strings.Contains(errb.String(), "--listen") {
			t.Errorf("%v: error does not name the flag or setting: %q", args, errb.String())
		}
	}
}
