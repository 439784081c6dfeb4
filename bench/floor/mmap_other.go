//go:build !linux

package main

import (
	"errors"
	"io"
)

func mmapWrite(string, string, io.Writer) error {
	return errors.New("mmap: Linux only")
}
