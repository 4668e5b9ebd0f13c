package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

const serveKfakeUsage = `Usage: tiercel bench serve-kfake [flags]

Serves franz-go's in-memory fake broker (kfake, one broker) on 127.0.0.1 in
this process until interrupted (or for --duration). It lets "bench produce"
and "bench consume" measure kfake across a process boundary, exactly as they
measure a tiercel broker: same commands, same client, separate processes.
(--kfake instead runs kfake inside the bench process itself.)

Flags:
`

// serveKfake runs "tiercel bench serve-kfake".
func serveKfake(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench serve-kfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveKfakeUsage)
		fs.PrintDefaults()
	}
	port := fs.Int("port", 9093, "TCP port on 127.0.0.1 (0 = any free port)")
	partitions := fs.Int("partitions", 1, "partitions of auto-created topics")
	duration := fs.Duration("duration", 0, "stop after this long (0 = on SIGINT or SIGTERM only)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	case *port < 0 || *port > 65535:
		return usageErrorf("--port must be between 0 and 65535, got %d", *port)
	case *partitions < 1:
		return usageErrorf("--partitions must be at least 1, got %d", *partitions)
	case *duration < 0:
		return usageErrorf("--duration must not be negative, got %v", *duration)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port), kfake.DefaultNumPartitions(*partitions))
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	defer c.Close()
	fmt.Fprintf(stderr, "kfake listening on %s\n", c.ListenAddrs()[0])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	<-ctx.Done()
	return nil
}
