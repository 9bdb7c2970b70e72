"""Storage under the applications: the vector store the video index keeps its rows in (`vector_store`)."""
