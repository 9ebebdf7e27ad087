package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// PEM block types used for signing keys.
const (
	pemPrivateKey = "PRIVATE KEY" // PKCS #8
	pemPublicKey  = "PUBLIC KEY"  // PKIX
)

// LoadSigningKey returns the Ed25519 private key stored as a PKCS #8 PEM
// block in the file at path. It never creates a key: a missing file is an
// error that names the path.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read signing key %s: %w", path, err)
	}
	return parsePrivateKeyPEM(path, data)
}

// LoadOrCreateSigningKey returns the Ed25519 private key stored as a PKCS #8
// PEM block in the file at path. When the file does not exist, it generates a
// key, creates the parent directory with mode 0700 if needed and writes the
// key with mode 0600. The file appears atomically and is never overwritten:
// when several processes race to create it, all of them return the key of
// the one that won. It returns an error when the file cannot be read or
// written, or holds something other than an Ed25519 private key.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return parsePrivateKeyPEM(path, data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("auth: encode signing key: %w", err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: create key directory: %w", err)
	}
	created, err := createExclusive(path, block, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auth: write signing key: %w", err)
	}
	if created {
		return priv, nil
	}
	return readWinner(path)
}

// createExclusive writes data to a new file at path with the given mode,
// unless a file already exists there. It reports whether it created the file.
//
// The data goes to a temporary file first, which is then hard-linked to path:
// link(2) fails when path exists, so no one ever sees a partly written file
// and a crash leaves at most a stray temporary file. On file systems without
// hard links it falls back to creating path with O_EXCL and writing in place.
func createExclusive(path string, data []byte, mode fs.FileMode) (bool, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return false, err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeAndClose(tmp, data, mode); err != nil {
		return false, err
	}
	err = os.Link(tmpName, path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := writeAndClose(f, data, mode); err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}

// writeAndClose sets the mode of f, writes data, flushes it to stable storage
// and closes f.
func writeAndClose(f *os.File, data []byte, mode fs.FileMode) error {
	err := f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readWinner reads the key that another process created at path. The other
// process may still be writing when it took the O_EXCL fallback, so an empty
// or partial file is read again for a short while before giving up.
func readWinner(path string) (ed25519.PrivateKey, error) {
	var lastErr error
	for range 50 {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: read signing key: %w", err)
		}
		priv, err := parsePrivateKeyPEM(path, data)
		if err == nil {
			return priv, nil
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return nil, lastErr
}

// parsePrivateKeyPEM decodes a PKCS #8 PEM block holding an Ed25519 key.
func parsePrivateKeyPEM(path string, data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemPrivateKey {
		return nil, fmt.Errorf("auth: %s: no %q PEM block", path, pemPrivateKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: parse private key: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: %s: private key is %T, want Ed25519", path, key)
	}
	return priv, nil
}

// LoadPublicKey returns the Ed25519 public key in the PEM file at path. The
// file may hold a PKIX "PUBLIC KEY" block, or a PKCS #8 "PRIVATE KEY" block
// from which the public key is derived. It returns an error when the file
// cannot be read or holds no Ed25519 key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read public key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("auth: %s: no PEM block", path)
	}
	switch block.Type {
	case pemPublicKey:
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: %s: parse public key: %w", path, err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("auth: %s: public key is %T, want Ed25519", path, key)
		}
		return pub, nil
	case pemPrivateKey:
		priv, err := parsePrivateKeyPEM(path, data)
		if err != nil {
			return nil, err
		}
		return priv.Public().(ed25519.PublicKey), nil
	default:
		return nil, fmt.Errorf("auth: %s: unexpected PEM block %q", path, block.Type)
	}
}

// WritePublicKey writes pub to the file at path as a PKIX "PUBLIC KEY" PEM
// block with mode 0644, replacing any existing file atomically. It creates
// the parent directory with mode 0700 if needed. It returns an error when pub
// is not a valid Ed25519 public key or the file cannot be written.
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("auth: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("auth: encode public key: %w", err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der})
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("auth: write public key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndClose(tmp, block, 0o644); err != nil {
		return fmt.Errorf("auth: write public key: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: write public key: %w", err)
	}
	return nil
}
