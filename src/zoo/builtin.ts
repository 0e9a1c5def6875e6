// Importing this module registers every built-in model with the zoo registry.
export {};
