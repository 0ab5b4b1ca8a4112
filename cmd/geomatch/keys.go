package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/geomatch/geomatch/auth"
)

// runAdminKeygen makes an Ed25519 token signing key: `geomatch admin
// keygen --kid K --private-key-file priv.pem --public-keys-file keys.json`
// writes the private key (a new file, readable by its owner only) and adds
// the public key to the key set, making the set if it does not exist.
func runAdminKeygen(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("admin keygen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	kid := fset.String("kid", "", "key id written in the tokens the key signs (default: the key's RFC 7638 thumbprint); use a new one for each key, e.g. the date")
	privFile := fset.String("private-key-file", "", "file to write the private key to (PEM, mode 0600); must not exist. Only the token issuer keeps it: geomatch admin token --signing-key-file")
	pubFile := fset.String("public-keys-file", "", "key set (JWKS) to add the public key to, made if missing; routers verify with it: --auth-public-keys")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "Usage: geomatch admin keygen [--kid K] --private-key-file FILE --public-keys-file FILE\n\n"+
			"Makes an Ed25519 key pair for signing tokens. The private key goes to a new\n"+
			"file for the token issuer; the public key is added to the key set the routers\n"+
			"verify with (--auth-public-keys). To rotate: add a new key with keygen, give\n"+
			"the set to every router, switch the issuer to the new private key, and once\n"+
			"the old key's tokens have expired remove it: geomatch admin keys --remove.\n\nFlags:\n")
		fset.PrintDefaults()
	}
	if err := parseKeyCmd(fset, args); err != nil {
		return err
	}
	if *privFile == "" || *pubFile == "" {
		fset.Usage()
		return errors.New("--private-key-file and --public-keys-file are required")
	}
	if cleanAbs(*privFile) == cleanAbs(*pubFile) {
		return errors.New("--private-key-file and --public-keys-file: give two files")
	}
	doc, err := os.ReadFile(*pubFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--public-keys-file: %w", err)
	}
	key, err := auth.GenerateSigningKey(*kid)
	if err != nil {
		return fmt.Errorf("--kid: %w", err)
	}
	newDoc, err := auth.AppendKeySet(doc, key.Public())
	if err != nil {
		return fmt.Errorf("--public-keys-file %s: %w", *pubFile, err)
	}
	pemText, err := key.MarshalPEM()
	if err != nil {
		return err
	}
	if err := writeNewKeyFile(*privFile, pemText, 0o600); err != nil {
		return fmt.Errorf("--private-key-file: %w", err)
	}
	if err := replaceKeySetFile(*pubFile, newDoc, 0o644); err != nil {
		return errors.Join(fmt.Errorf("--public-keys-file: %w", err), os.Remove(*privFile))
	}
	keys, err := auth.ParseKeySet(newDoc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s: private key in %s (for the token issuer only: geomatch admin token --signing-key-file %s)\n", key.ID, *privFile, *privFile)
	fmt.Fprintf(stdout, "key set %s lists %d key(s): %s (give it to every router: --auth-public-keys %s)\n", *pubFile, len(keys), keySetIDs(keys), *pubFile)
	return nil
}

// runAdminKeys lists the keys of a key set, or removes one: `geomatch
// admin keys --public-keys-file keys.json [--remove KID]`.
func runAdminKeys(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("admin keys", flag.ContinueOnError)
	fset.SetOutput(stderr)
	pubFile := fset.String("public-keys-file", "", "the key set (JWKS) routers verify tokens with (--auth-public-keys)")
	remove := fset.String("remove", "", "remove the key of this kid from the set: do it only once every token it signed has expired")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "Usage: geomatch admin keys --public-keys-file FILE [--remove KID]\n\nLists the Ed25519 keys of a key set, or removes one.\n\nFlags:\n")
		fset.PrintDefaults()
	}
	if err := parseKeyCmd(fset, args); err != nil {
		return err
	}
	if *pubFile == "" {
		fset.Usage()
		return errors.New("--public-keys-file is required")
	}
	doc, err := os.ReadFile(*pubFile)
	if err != nil {
		return fmt.Errorf("--public-keys-file: %w", err)
	}
	if *remove != "" {
		if doc, err = auth.RemoveFromKeySet(doc, *remove); err != nil {
			return fmt.Errorf("--remove: %w", err)
		}
		if err := replaceKeySetFile(*pubFile, doc, 0o644); err != nil {
			return fmt.Errorf("--public-keys-file: %w", err)
		}
		fmt.Fprintf(stdout, "removed key %s from %s; restart the routers with it\n", *remove, *pubFile)
	}
	keys, err := auth.ParseKeySet(doc)
	if err != nil {
		return fmt.Errorf("--public-keys-file %s: %w", *pubFile, err)
	}
	for _, k := range keys {
		fmt.Fprintf(stdout, "%s\tEd25519\t%s\n", k.ID, auth.Thumbprint(k.Key))
	}
	return nil
}

// parseKeyCmd parses the flags of an admin subcommand that needs no
// cluster; it takes no arguments.
func parseKeyCmd(fset *flag.FlagSet, args []string) error {
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(fset.Output(), "unexpected arguments: %v\n", fset.Args())
		fset.Usage()
		return errUsage
	}
	return nil
}

// readSigningKey reads an Ed25519 signing key file.
func readSigningKey(path string) (*auth.SigningKey, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := auth.ParseSigningKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func keySetIDs(keys []auth.PublicKey) string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return strings.Join(ids, ", ")
}

func cleanAbs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return filepath.Clean(a)
	}
	return path
}

// writeNewKeyFile writes data to a file that must not exist yet.
func writeNewKeyFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close(), os.Remove(path))
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close(), os.Remove(path))
	}
	if err := f.Close(); err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}

// replaceKeySetFile writes data to path through a temporary file renamed over
// it, so that a reader (a router starting) sees the old set or the new,
// never part of one.
func replaceKeySetFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close(), os.Remove(tmp))
	}
	if err := f.Chmod(mode); err != nil {
		return errors.Join(err, f.Close(), os.Remove(tmp))
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close(), os.Remove(tmp))
	}
	if err := f.Close(); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}
