"""Language-model providers: the local llama.cpp engine and, later, remote ones."""
