//go:build !linux

package filestore

import (
	"errors"
	"os"
)

var errNoUnnamed = errors.New("unnamed files are a Linux feature")

func openDir(string) (*os.File, error)            { return nil, errNoUnnamed }
func openUnnamedAt(*os.File) (*os.File, error)    { return nil, errNoUnnamed }
func linkUnnamedAt(_, _ *os.File, _ string) error { return errNoUnnamed }
func renameAt(*os.File, string, string) error     { return errNoUnnamed }
func removeAt(*os.File, string)                   {}
func unnamedFilesWork(string) bool                { return false }
