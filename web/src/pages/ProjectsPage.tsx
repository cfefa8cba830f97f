/** The projects of the organisation, and a form to create one. */
import { useState, type SubmitEvent } from 'react';
import { createProject, listProjects } from '../api/projects.ts';
import { fieldMessage } from '../api/problem.ts';
import type { Page, Project } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading } from '../components/Alerts.tsx';
import { TextAreaField, TextField } from '../components/Fields.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useAction, useLoad } from '../hooks/useAsync.ts';
import { mayManageProjects } from '../permissions.ts';
import { Link, navigate } from '../router.tsx';
import { useUser } from '../session.tsx';

export function ProjectsPage() {
  const user = useUser();
  const projects = useLoad(() => listProjects(), []);
  const more = useAction(async (cursor: string) => {
    const page = await listProjects(cursor);
    projects.set((loaded) => ({ items: [...loaded.items, ...page.items], nextCursor: page.nextCursor }));
  });
  return (
    <>
      <PageHeading title="Projects" />
      {projects.status === 'loading' ? <Loading what="projects" /> : null}
      {projects.status === 'error' ? <LoadFailed error={projects.error} retry={projects.reload} /> : null}
      {projects.status === 'ready' ? <ProjectList page={projects.data} /> : null}
      {projects.status === 'ready' && projects.data.nextCursor !== null ? (
        <p>
          <ErrorAlert error={more.error} />
          <button type="button" className="button" disabled={more.pending} onClick={() => void more.run(projects.data.nextCursor ?? '')}>
            Show more projects
          </button>
        </p>
      ) : null}
      {mayManageProjects(user.role) ? <CreateProject /> : null}
    </>
  );
}

function ProjectList({ page }: { page: Page<Project> }) {
  if (page.items.length === 0) return <p>There are no projects yet.</p>;
  return (
    <ul className="project-list">
      {page.items.map((project) => (
        <li key={project.id} className="project-item">
          <Link to={`/projects/${project.id}`} className="project-link">
            <span className="project-key">{project.key}</span> {project.name}
          </Link>
          {project.description ? <p className="project-description">{project.description}</p> : null}
          <Link to={`/tasks?project=${project.id}`} className="project-secondary">
            Task list<span className="visually-hidden"> of {project.name}</span>
          </Link>
        </li>
      ))}
    </ul>
  );
}

function CreateProject() {
  const [key, setKey] = useState('');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const action = useAction(async () => {
    const project = await createProject({ key, name: name.trim(), ...(description.trim() ? { description: description.trim() } : {}) });
    navigate(`/projects/${project.id}`);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <section aria-labelledby="new-project" className="section">
      <h2 id="new-project">New project</h2>
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <TextField
          label="Key"
          name="key"
          hint="2 to 10 capital letters or digits, starting with a letter; it prefixes task keys (WEB-12) and cannot be changed."
          required
          minLength={2}
          maxLength={10}
          pattern="[A-Z][A-Z0-9]{1,9}"
          autoComplete="off"
          autoCapitalize="characters"
          value={key}
          error={fieldMessage(action.error, '/key')}
          onChange={(e) => setKey(e.target.value.toUpperCase())}
        />
        <TextField label="Name" name="name" required maxLength={200} value={name} error={fieldMessage(action.error, '/name')} onChange={(e) => setName(e.target.value)} />
        <TextAreaField label="Description (optional)" name="description" rows={3} maxLength={10000} value={description} error={fieldMessage(action.error, '/description')} onChange={(e) => setDescription(e.target.value)} />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={action.pending}>
            Create the project
          </button>
        </div>
      </form>
    </section>
  );
}
