// Command gendata writes the reference data of statserver's tests with Go's own encoders:
// gob test vectors (DIR/gob-vectors/*.jsonl) and the WebSocket frames of every Knative
// stats era (DIR/stat-frames/*.jsonl), each with what Go decodes from them. The contract
// of the files is tests/data/README.md. Output is deterministic: fixed seeds, no clock.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run ./peers/gendata -out tests/data
//
// gob type ids are global to a Go process, and a real sender's first frame starts at id
// 65, so each era's frames are made by a child process of this program (-era NAME).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	out := flag.String("out", "tests/data", "directory to write gob-vectors/ and stat-frames/ into")
	era := flag.String("era", "", "internal: write the frames of one era to stdout")
	flag.Parse()
	if *era != "" {
		if err := writeEra(os.Stdout, *era); err != nil {
			fail(err)
		}
		return
	}
	if err := generate(*out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gendata:", err)
	os.Exit(1)
}

func generate(out string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	frames := filepath.Join(out, "stat-frames")
	if err := os.MkdirAll(frames, 0o755); err != nil {
		return err
	}
	for _, era := range eraNames {
		cmd := exec.Command(self, "-era", era)
		cmd.Stderr = os.Stderr
		data, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("era %s: %v", era, err)
		}
		if err := os.WriteFile(filepath.Join(frames, era+".jsonl"), data, 0o644); err != nil {
			return err
		}
	}
	vectors := filepath.Join(out, "gob-vectors")
	if err := os.MkdirAll(vectors, 0o755); err != nil {
		return err
	}
	files, err := gobVectorFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(vectors, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// jsonLine is one JSON object and a newline, with <, > and & left as they are.
func jsonLine(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
