// The one wait-until helper, shared with the conformance package.
global using Eventually = Keel.Storage.Conformance.Eventually;
